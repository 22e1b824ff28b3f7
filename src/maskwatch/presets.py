"""Which detector, with which settings, each use of maskwatch gets by default: the one place.

Every default was chosen by measurement on the fmd validation photos and 640x480 frames
(benchmarks/bench_detect.py, bench_watch.py, bench_serve.py):

* ``photo`` (`maskwatch.load`, ``maskwatch detect`` / ``eval`` / ``app``): ``yunet+maskwatch``, the
  two detectors together find the most faces and give the best mAP;
* ``video`` (``maskwatch watch``): YuNet alone at scale 1 (no upscaling of small frames): the fastest
  accurate detector; the ensemble finds more faces at 1.8x the time per frame;
* ``api`` (``maskwatch serve``): YuNet alone with its measured settings: twice the ensemble's
  throughput.

A preset's ``settings`` apply only where its own detector is used and the caller leaves them unset;
each detector's own measured settings are in its registry entry (`maskwatch.detectors.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import UnknownNameError


@dataclass(frozen=True)
class Preset:
    detector: str
    settings: Mapping[str, Any] = field(default_factory=dict)  # `maskwatch.load` arguments


PRESETS: dict[str, Preset] = {
    "photo": Preset("yunet+maskwatch"),
    "video": Preset("yunet", {"scale": 1.0}),
    "api": Preset("yunet"),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
