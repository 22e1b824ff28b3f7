"""Which detector, with which settings, each use of maskwatch gets by default: the one place.

Every default was chosen by measurement on the fmd validation photos and 640x480 frames
(benchmarks/bench_detect.py): ``rfb``, maskwatch's single-pass face + mask detector, shipped in the
package (no download), for photos (`maskwatch.load`, ``maskwatch detect`` / ``eval`` / ``app``), video
(``maskwatch watch``) and the API (``maskwatch serve``) alike. It runs at about the speed of the
fastest peer; the three-network stack ``yunet+maskwatch`` + classifier finds more faces at several
times the cost and stays selectable (``--detector yunet+maskwatch``), like YuNet, SSD and Haar.

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


#: photos: rfb, then a second opinion of the crop classifier on the faces whose label rfb is less than
#: 90% sure of (a third of them on fmd), the mean of the two networks' class probabilities there
#: (benchmarks/bench_detect.py)
TWO_PASSES = {"classifier": "default", "classifier_weight": 0.5, "classifier_below": 0.9}

PRESETS: dict[str, Preset] = {
    "photo": Preset("rfb", TWO_PASSES),
    # frames: one pass (the classifier would halve the frame rate), at the threshold bench_watch measured
    # (labels steadier per track than at the photos' lower one)
    "video": Preset("rfb", {"score_threshold": 0.5}),
    "api": Preset("rfb", TWO_PASSES),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
