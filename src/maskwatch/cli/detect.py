"""Find every face in photos and label it with_mask / without_mask / mask_worn_incorrectly.

Writes annotated images into --output, one JSON line per input to stdout (or --jsonl) and, with
--csv, one CSV row per face. Every input gets exactly one answer: a bad file (or a folder of no
images, a FIFO, a symlink loop) is reported on stderr and in its JSON line, and the other files are
still processed; the exit code is 1 if any input failed. Folders are searched by content: every
file the decoder accepts, whatever its suffix; what was skipped is counted at the end.

Existing --jsonl / --csv files and annotated images are never replaced without --overwrite;
--resume continues a killed batch instead, skipping the sources already in --jsonl.

Annotated images keep the input's format where it is one maskwatch writes (PNG stays PNG, JPEG stays
JPEG, also WebP, BMP, TIFF); anything else is written as JPEG. At the end, one line on stderr counts
the faces per label and the compliant share (with_mask among the classified faces) of the batch;
-v adds that line for every photo, --quiet silences it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
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
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue a killed batch: skip the inputs already in --jsonl, append to it and to --csv")
    again.add_argument("--overwrite", action="store_true",
                       help="replace existing --jsonl / --csv files and annotated images")
    p.add_argument("--header", action="store_true",
                   help="add a band above each annotated image with the counts per label")
    p.add_argument("-v", "--verbose", dest="per_photo", action="store_true",
                   help="one line of counts per label for every photo on stderr")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    add_detector_arguments(p)


#: Suffixes of the formats an annotated image is written in as it came; others become JPEG.
KEPT_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def _output_path(out_dir: Path, src: Path, used: set[Path]) -> Path:
    suffix = src.suffix.lower() if src.suffix.lower() in KEPT_SUFFIXES else ".jpg"
    target = out_dir / f"{src.stem}{suffix}"
    n = 1
    while target in used:
        target = out_dir / f"{src.stem}_{n}{suffix}"
        n += 1
    used.add(target)
    return target


def _is_file_output(path: str | None) -> bool:
    return path not in (None, "-")


def _check_outputs(args: argparse.Namespace, targets: list[Path | None]) -> str | None:
    """Why the outputs cannot be written as asked, or ``None``."""
    from ..imageio import display_name

    if args.resume and not _is_file_output(args.jsonl):
        return "--resume needs --jsonl FILE: the JSON lines are the record of which inputs are done"
    out_dir = Path(args.output)
    if not args.no_annotate and out_dir.exists() and not out_dir.is_dir():
        return f"-o {display_name(out_dir)}: is a file, not a folder for the annotated images"
    if args.resume or args.overwrite:
        return None
    for path in (args.jsonl, args.csv):
        if _is_file_output(path) and os.path.exists(path) and os.path.getsize(path) > 0:
            return (f"{display_name(path)} exists; add --resume to continue that batch or --overwrite to "
                    "replace it")
    existing = [t for t in targets if t is not None and t.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        return (f"{display_name(existing[0])} exists{more}; add --overwrite to replace the annotated images, "
                "--resume to continue a batch, or choose another -o")
    return None


def run(args: argparse.Namespace) -> int:
    from ..annotate import annotate
    from ..errors import MaskwatchError
    from ..imageio import display_name, expand_inputs, read_image, write_image
    from ..writers import CsvWriter, JsonlWriter, error_record, resume_csv, resume_jsonl
    from ..labels import LabelCounts
    from . import error
    from .common import format_counts, note, open_output, pipeline_from_args, progress

    inputs = expand_inputs(args.inputs)
    out_dir = Path(args.output)
    used: set[Path] = set()
    # every target is named in input order, done or not, so that a resumed batch names them alike
    targets = [None if err or args.no_annotate else _output_path(out_dir, path, used) for path, err in inputs.items]
    problem = _check_outputs(args, targets)
    if problem:
        error(problem)
        return 2
    done: set[str] = set()
    csv_has_header = False
    if args.resume:
        done = resume_jsonl(args.jsonl)
        if args.csv:
            csv_has_header = resume_csv(args.csv, done)
    todo = [(item, target) for item, target in zip(inputs.items, targets) if str(item[0]) not in done]
    if args.resume:
        note(f"resuming: {len(inputs.items) - len(todo)} of {len(inputs.items)} input(s) already in "
             f"{display_name(args.jsonl)}")
    pipe = pipeline_from_args(args) if any(err is None for (_, err), _ in todo) else None
    failed = 0
    counts = LabelCounts()
    per_photo = args.per_photo or getattr(args, "verbose", False)
    mode = "a" if args.resume else "w"
    with contextlib.ExitStack() as stack:
        jsonl = JsonlWriter(stack.enter_context(open_output(args.jsonl, mode)))
        csv = CsvWriter(stack.enter_context(open_output(args.csv, mode)), header=not csv_has_header) if args.csv else None
        bar = progress(todo, len(todo), "detect", enabled=len(todo) > 1 and not args.quiet)
        for (path, problem), target in bar:
            try:
                if problem:
                    raise MaskwatchError(problem)
                image = read_image(path, max_pixels=pipe.max_pixels)
                faces = pipe.detect(image, source=str(path))
                record = faces.to_dict()
                counts = counts + faces.counts()
                if per_photo:
                    note(f"{display_name(path)}: {format_counts(faces.counts())}")
                if target is not None:
                    write_image(target, annotate(image, faces, blur=args.blur, header=args.header))
            except (MaskwatchError, OSError) as exc:
                failed += 1
                shown = display_name(path)
                text = display_name(str(exc))
                message = text if text.startswith(shown) else f"{shown}: {text}"
                error(message)
                record = error_record(str(path), message)
            # the CSV rows first: a JSON line is written only once everything of its input is
            if csv:
                csv.write(record)
            jsonl.write(record)
    if counts.images and not args.quiet:
        note(f"{counts.images} photo(s): {format_counts(counts)}")
    if inputs.skipped:
        note("in the folders given, " + inputs.skipped_summary())
    if failed:
        error(f"{failed} of {len(todo)} input(s) failed")
    return 1 if failed else 0
