"""Arguments and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import IO, Iterator



def add_detector_arguments(p: argparse.ArgumentParser, preset: str = "photo") -> None:
    """The detection flags; ``--detector`` defaults to the preset's detector (`maskwatch.presets`)."""
    from ..detectors import names
    from ..pipeline import DEFAULT_MIN_FACE, RUNTIMES
    from ..presets import PRESETS

    g = p.add_argument_group("detection")
    g.add_argument("--detector", default=PRESETS[preset].detector, choices=names(),
                   help="face detector (yunet+maskwatch: finds the most faces; yunet: fastest accurate one; "
                        "maskwatch: our own, one pass with --classifier none; ssd / haar: the classic tutorials')")
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
    g.add_argument("--no-calibrate", action="store_true",
                   help="keep the detector's own box style (by default yunet/ssd boxes are moved onto the "
                        "annotation style the classifier was trained on)")
    g.add_argument("--classifier", default="auto",
                   help="mask classifier ONNX file ('auto': none behind the one-pass rfb detector, the shipped "
                        "classifier behind face-only detectors; 'default': the shipped classifier, e.g. rfb in two "
                        "passes; 'none': keep the detector's own classes)")
    g.add_argument("--runtime", choices=list(RUNTIMES), default="onnx",
                   help="onnx: ONNX Runtime (default); tflite / tflite-int8: the LiteRT interpreter on the float32 / "
                        "int8 files of 'maskwatch export default --format tflite' (rfb and the classifier; docs/mobile.md)")


def pipeline_from_args(args: argparse.Namespace, calibrate: bool | None = None, preset: str = "photo"):
    """The pipeline of the detection flags (``--no-calibrate`` wins over ``calibrate``)."""
    from ..pipeline import load

    classifier = None if str(args.classifier).lower() == "none" else args.classifier  # detector alone
    if getattr(args, "no_calibrate", False):
        calibrate = False
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


def note(message: str) -> None:
    """One informational line on stderr (keeps any progress bar intact)."""
    from tqdm import tqdm

    tqdm.write(f"maskwatch: {message}", file=sys.stderr)


def progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr)
