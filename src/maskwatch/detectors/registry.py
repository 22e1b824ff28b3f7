"""The detector registry: each detector module registers its factory with its measured settings.

In the style of timm's ``register_model``: a detector's defaults live beside its code, and adding a
detector is one module with one `register` call (plus its import in ``maskwatch.detectors``)::

    @register("rfb", defaults={"score_threshold": 0.5, "min_side": 640}, summary="...")
    class RFBDetector(FaceDetector): ...

An entry holds:

* ``factory`` — builds the detector from keyword settings (a class or a function);
* ``defaults`` — the settings measured best on the fmd validation photos (benchmarks/bench_detect.py);
  `build` (and so `maskwatch.load`) applies them to whatever its caller leaves unset,
  `create` does not;
* ``calibration`` — the box calibration ``(dx, dy, sw, sh)`` that moves the detector's boxes onto
  the annotation style (`maskwatch.detectors.calibration`), applied by `build` unless
  ``calibrate=False``; ``None``: the boxes already have that style;
* ``labels_masks`` — the detector labels the masks itself in one pass: ``classifier="auto"`` (the
  default of `maskwatch.load` and the commands) adds no crop classifier behind it;
* ``runtimes`` — the values of ``runtime`` its factory takes (``onnx``, ``tflite``, ...), where it
  runs on more than one (`maskwatch.load`'s ``runtime``);
* ``arch`` — the ``arch`` in the spec of the model files it runs: `resolve` turns such a file (one
  that ``maskwatch train-detector`` exported, say) into this entry with ``model_path`` set;
* ``composite`` — the factory builds other registered detectors (an ensemble): `build` hands it
  ``scale`` / ``min_side`` / ``score_threshold`` / ``calibrate`` for its members, and `create`
  its ``defaults`` too (an ensemble's defaults are its structure, measured like any setting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import UnknownNameError
from .base import Detector


@dataclass(frozen=True)
class DetectorEntry:
    name: str
    factory: Callable[..., Detector]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    calibration: tuple[float, float, float, float] | None = None
    composite: bool = False
    summary: str = ""
    labels_masks: bool = False  # one pass: its faces carry the mask classes, so "auto" adds no classifier
    runtimes: tuple[str, ...] = ()  # the `runtime=` values its factory takes (maskwatch.load(runtime=...))
    arch: str | None = None  # the spec arch of its model files (`resolve`)


_ENTRIES: dict[str, DetectorEntry] = {}


def register(name: str, *, defaults: Mapping[str, Any] | None = None,
             calibration: tuple[float, float, float, float] | None = None, composite: bool = False,
             summary: str = "", labels_masks: bool = False, runtimes: tuple[str, ...] = (),
             arch: str | None = None) -> Callable:
    """Decorator: register a detector factory under ``name`` (see the module docstring)."""
    def decorate(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        if name in _ENTRIES:
            raise ValueError(f"detector {name!r} is already registered")
        _ENTRIES[name] = DetectorEntry(name, factory, dict(defaults or {}), calibration, composite, summary, labels_masks,
                                       tuple(runtimes), arch)
        return factory
    return decorate


def entry(name: str) -> DetectorEntry:
    """The registry entry of ``name``; `UnknownNameError` lists the known names."""
    if name not in _ENTRIES:
        raise UnknownNameError(f"unknown detector {name!r}; choose one of: {', '.join(sorted(_ENTRIES))}")
    return _ENTRIES[name]


def resolve(detector: str) -> tuple[str, dict[str, Any]]:
    """``(registered name, factory keywords)`` of a detector name or of an exported model file:
    ``"rfb"`` -> ``("rfb", {})``; ``"runs/det/maskwatch_rfb.onnx"`` -> ``("rfb", {"model_path": ...})``,
    the entry whose ``arch`` the file's spec names, so the file gets that entry's measured settings.

    Raises:
        UnknownNameError: neither a registered name nor a file.
        ModelSpecError: a file without a detector spec, or of an arch no entry runs.
    """
    from pathlib import Path

    if detector in _ENTRIES:
        return detector, {}
    path = Path(detector)
    if not path.is_file():
        raise UnknownNameError(f"unknown detector {detector!r}: neither one of {', '.join(sorted(_ENTRIES))} "
                               "nor an exported detector model file")
    from ..errors import ModelSpecError
    from ..litertmodel import open_model

    arch = open_model(path, "detector").spec.arch
    for e in _ENTRIES.values():
        if e.arch == arch:
            return e.name, {"model_path": str(path)}
    raise ModelSpecError(f"{path}: a detector of arch {arch!r}, which no maskwatch detector runs")


def names() -> list[str]:
    """Registered detector names, sorted."""
    return sorted(_ENTRIES)


def create(name: str, **kwargs: Any) -> Detector:
    """The detector ``name`` with exactly these settings (its class defaults for the rest)."""
    e = entry(name)
    return e.factory(**{**e.defaults, **kwargs}) if e.composite else e.factory(**kwargs)


def build(name: str, *, scale: float | None = None, min_side: int | None = None,
          score_threshold: float | None = None, calibrate: bool | None = None, **kwargs: Any) -> Detector:
    """The detector ``name`` with its measured defaults for what is left unset, boxes calibrated.

    An explicit ``scale`` replaces the measured upscaling of small images (``min_side``,
    ``max_upscale``) unless ``min_side`` is given too. ``calibrate``: ``None`` / ``True`` apply the
    entry's calibration (if it has one), ``False`` keeps the detector's own box style.
    """
    from .calibration import Calibrated

    e = entry(name)
    if e.composite:
        return e.factory(**{**e.defaults, **kwargs}, scale=scale, min_side=min_side,
                         score_threshold=score_threshold, calibrate=calibrate)
    kw = {**e.defaults, **kwargs}
    if scale is not None:
        kw["scale"] = scale
        kw.pop("min_side", None)
        kw.pop("max_upscale", None)
    if min_side is not None:
        kw["min_side"] = min_side
    if score_threshold is not None:
        kw["score_threshold"] = score_threshold
    detector = e.factory(**kw)
    if e.calibration is not None and calibrate is not False:
        detector = Calibrated(detector, e.calibration)
    return detector
