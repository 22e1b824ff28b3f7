"""Find every face in photos and label it with_mask / without_mask / mask_worn_incorrectly.

Writes annotated images into --output, one JSON line per image to stdout (or --jsonl) and,
with --csv, one CSV row per face. A bad file is reported on stderr and in its JSON line; the other
files are still processed, and the exit code is 1 if any file failed.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

HELP = "detect faces and masks in photos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .common import add_detector_arguments

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", default="maskwatch-output", help="folder for annotated images")
    p.add_argument("--no-annotate", action="store_true", help="do not write annotated images")
    p.add_argument("--blur", action="store_true", help="blur every face in the written images (privacy)")
    p.add_argument("--jsonl", default=None, help="write the JSON lines to this file instead of stdout")
    p.add_argument("--csv", default=None, help="also write one CSV row per face to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_detector_arguments(p)


def _output_path(out_dir: Path, src: Path, used: set[Path]) -> Path:
    target = out_dir / f"{src.stem}.jpg"
    n = 1
    while target in used:
        target = out_dir / f"{src.stem}_{n}.jpg"
        n += 1
    used.add(target)
    return target


def run(args: argparse.Namespace) -> int:
    from ..annotate import annotate
    from ..errors import MaskwatchError
    from ..imageio import iter_image_paths, read_image, write_image
    from ..writers import CsvWriter, JsonlWriter, error_record
    from . import error
    from .common import open_output, pipeline_from_args, progress

    paths = iter_image_paths(args.inputs)
    if not paths:
        error("no input images found in " + " ".join(args.inputs))
        return 1
    pipe = pipeline_from_args(args)
    out_dir = Path(args.output)
    used: set[Path] = set()
    failed = 0
    with contextlib.ExitStack() as stack:
        jsonl = JsonlWriter(stack.enter_context(open_output(args.jsonl)))
        csv = CsvWriter(stack.enter_context(open_output(args.csv))) if args.csv else None
        bar = progress(paths, len(paths), "detect", enabled=len(paths) > 1 and not args.quiet)
        for path in bar:
            try:
                image = read_image(path, max_pixels=pipe.max_pixels)
                faces = pipe.detect(image, source=str(path))
                record = faces.to_dict()
                if not args.no_annotate:
                    write_image(_output_path(out_dir, path, used), annotate(image, faces, blur=args.blur))
            except (MaskwatchError, OSError) as exc:
                failed += 1
                message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                error(message)
                record = error_record(str(path), message)
            jsonl.write(record)
            if csv:
                csv.write(record)
    if failed:
        error(f"{failed} of {len(paths)} input(s) failed")
    return 1 if failed else 0
