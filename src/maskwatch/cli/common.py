"""Arguments and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from pathlib import Path
from typing import IO, Iterator



def add_detector_arguments(p: argparse.ArgumentParser, preset: str = "photo", calibrate: bool = True) -> None:
    """The detection flags; ``--detector`` defaults to the preset's detector (`maskwatch.presets`).
    ``calibrate``: offer ``--calibrate/--no-calibrate`` (for commands that pass it on)."""
    from ..detectors import names
    from ..pipeline import DEFAULT_MIN_FACE, RUNTIMES
    from ..presets import PRESETS

    g = p.add_argument_group("detection")
    g.add_argument("--detector", default=PRESETS[preset].detector, type=detector_name_or_file, metavar="NAME|FILE",
                   help=f"face detector: one of {', '.join(names())} (default: {PRESETS[preset].detector}, the single-pass "
                        "detector in the package; yunet+maskwatch: the earlier three-network stack, slower; ssd / haar: "
                        "the classic tutorials'), or a detector file that 'maskwatch train-detector' exported")
    g.add_argument("--scale", type=float, default=None,
                   help="detector input scale; >1 finds smaller faces, slower (default: measured best per detector)")
    g.add_argument("--min-side", type=int, default=None, metavar="PX",
                   help="upscale smaller images until their longer side is PX (default: measured per detector; "
                        "--detector maskwatch --scale 0.8 --min-side 512 is the fast setting of docs/detection.md)")
    g.add_argument("--score-threshold", type=float, default=None,
                   help="minimum face detection score (default: measured per detector; yunet+maskwatch keeps a "
                        "face one detector is sure of, or both see)")
    g.add_argument("--min-face", type=float, default=DEFAULT_MIN_FACE, help="ignore faces smaller than this (px)")
    g.add_argument("--tile", type=int, default=None, metavar="PX",
                   help="detect on overlapping PX x PX tiles of larger images (very large photos, small faces)")
    if calibrate:
        g.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=None,
                       help="move the detector's boxes onto the annotation style the classifier was trained on "
                            "(maskwatch.detectors.calibration), or keep its own (--no-calibrate) (default: the "
                            "detector's measured choice: on for yunet and ssd)")
    g.add_argument("--classifier", default="auto",
                   help="mask classifier ONNX file ('auto': the use's measured default: for photos and the API the "
                        "shipped classifier's second opinion on the faces rfb is less sure of, none behind rfb for "
                        "video, the shipped classifier behind face-only detectors; 'default': the shipped "
                        "classifier on every face; 'none': the detector's own classes alone)")
    g.add_argument("--runtime", choices=list(RUNTIMES), default="onnx",
                   help="onnx: ONNX Runtime (default); tflite / tflite-int8: the LiteRT interpreter on the float32 / "
                        "int8 files of 'maskwatch export default --format tflite' (rfb and the classifier; docs/mobile.md)")


def detector_name_or_file(value: str) -> str:
    """``--detector``: a registered name or an existing file (`maskwatch.detectors.resolve` reads its spec)."""
    from ..detectors import names

    if value in names() or Path(value).is_file():
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is neither one of {', '.join(names())} nor a detector model file")


def classifier_from_args(args: argparse.Namespace) -> str | None:
    """``--classifier``: ``None`` for ``none`` (the detector alone), else the name or file as given."""
    return None if str(args.classifier).lower() == "none" else args.classifier


def pipeline_from_args(args: argparse.Namespace, calibrate: bool | None = None, preset: str = "photo"):
    """The pipeline of the detection flags (``--calibrate`` / ``--no-calibrate`` win over ``calibrate``)."""
    from ..pipeline import load

    classifier = classifier_from_args(args)
    if getattr(args, "calibrate", None) is not None:
        calibrate = args.calibrate
    return load(detector=args.detector, classifier=classifier, scale=args.scale, preset=preset,
                score_threshold=args.score_threshold, min_face=args.min_face, calibrate=calibrate,
                tile=getattr(args, "tile", None), min_side=getattr(args, "min_side", None),
                runtime=getattr(args, "runtime", "onnx"))


@contextlib.contextmanager
def open_output(path: str | None, mode: str = "w") -> Iterator[IO[str]]:
    """A text file for writing (``mode`` ``"a"`` appends), or stdout for ``None`` / ``-``."""
    if path in (None, "-"):
        yield sys.stdout
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, newline="", encoding="utf-8", errors="backslashreplace") as fh:
        yield fh


def missing_modules(*modules: str) -> list[str]:
    """The importable names among ``modules`` that are not installed (``a|b``: either will do)."""

    def present(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None  # None also where sys.modules[name] is None
        except (ImportError, ValueError):
            return False

    return [m.split("|")[0] for m in modules if not any(present(alt) for alt in m.split("|"))]


def require(what: str, extra: str, *modules: str) -> None:
    """Fail at once, before any work, when ``modules`` of the ``extra`` are missing.

    ``what`` names the command (and flag) that needs them: ``require("watch --chart", "video",
    "matplotlib")`` raises `MissingExtraError`: ``maskwatch watch --chart needs matplotlib, which is not
    installed: pip install "maskwatch[video]"``. Every command calls this first in its ``run``."""
    from ..errors import MissingExtraError

    missing = missing_modules(*modules)
    if missing:
        raise MissingExtraError(f"maskwatch {what} needs {', '.join(missing)}, which "
                                f"{'is' if len(missing) == 1 else 'are'} not installed: "
                                f'pip install "maskwatch[{extra}]"')


def format_counts(counts, noun: str | None = "face(s)") -> str:
    """``22 face(s): with_mask 21, without_mask 0, mask_worn_incorrectly 1; 95% compliant`` of a
    `maskwatch.labels.LabelCounts` (``noun=None``: ``22 (with_mask 21, ...; 95% compliant)``)."""
    parts = [f"{label} {n}" for label, n in counts.counts.items()]
    if counts.unclassified:
        parts.append(f"unclassified {counts.unclassified}")
    share = counts.compliant_share
    tail = "" if share is None else f"; {100 * share:.0f}% compliant"
    if noun is None:
        return f"{counts.total} ({', '.join(parts)}{tail})"
    return f"{counts.total} {noun}: {', '.join(parts)}{tail}"


def note(message: str) -> None:
    """One informational line on stderr (keeps any progress bar intact)."""
    from tqdm import tqdm

    tqdm.write(f"maskwatch: {message}", file=sys.stderr)


def progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr)
