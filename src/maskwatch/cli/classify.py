"""Classify images that are already face crops (no face detection).

One JSON line per image: {"source", "label", "confidence", "probs", "error"}. Unreadable files get
an error line; the others are still classified; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse

HELP = "classify face-crop images (no detection)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="face-crop image files, folders or globs")
    p.add_argument("--model", default=None, help="classifier ONNX file (default: the model shipped with maskwatch)")
    p.add_argument("--jsonl", default=None, help="write the JSON lines to this file instead of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..classifier import MaskClassifier
    from ..errors import MaskwatchError
    from ..imageio import iter_image_paths, read_image
    from ..labels import LABELS
    from ..writers import JsonlWriter
    from . import error
    from .common import open_output, progress

    paths = iter_image_paths(args.inputs)
    clf = MaskClassifier(args.model)
    failed = 0
    with open_output(args.jsonl) as fh:
        out = JsonlWriter(fh)
        for path in progress(paths, len(paths), "classify", enabled=len(paths) > 1 and not args.quiet):
            try:
                probs = clf.classify_image(read_image(path))
                i = int(probs.argmax())
                record = {"source": str(path), "label": LABELS[i], "confidence": round(float(probs[i]), 4),
                          "probs": {n: round(float(p), 4) for n, p in zip(LABELS, probs)}, "error": None}
            except (MaskwatchError, OSError) as exc:
                failed += 1
                error(str(exc))
                record = {"source": str(path), "label": None, "confidence": None, "probs": None, "error": str(exc)}
            out.write(record)
    return 1 if failed else 0
