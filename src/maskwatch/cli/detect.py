"""Find every face in photos and label it with_mask / without_mask / mask_worn_incorrectly.

Writes annotated images into --output, one JSON line per input to stdout (or --jsonl) and, with
--csv, one CSV row per face. Every input gets exactly one answer: a bad file (or a folder of no
images, a FIFO, a symlink loop) is reported on stderr and in its JSON line, and the other files are
still processed; the exit code is 1 if any input failed. Folders are searched by content: every
file the decoder accepts, whatever its suffix; what was skipped is counted at the end.

Existing --jsonl / --csv files and annotated images are never replaced without --overwrite;
--resume continues a killed batch instead, skipping the sources already in --jsonl (and --parquet).

Photos are decoded and detected in --workers threads while the results are written (--engine plain),
or by a Ray Data job on this machine or a cluster (--engine ray, the `ray` extra), which also reads
s3:// / gs:// / file:// URIs; both give the same JSON lines in input order (docs/scale.md).

Annotated images keep the input's format where it is one maskwatch writes (PNG stays PNG, JPEG stays
JPEG, also WebP, BMP, TIFF); anything else is written as JPEG. At the end, one line on stderr counts
the faces per label and the compliant share (with_mask among the classified faces) of the batch;
-v adds that line for every photo, --quiet silences it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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
    b = p.add_argument_group("batch (docs/scale.md)")
    b.add_argument("--engine", choices=["plain", "ray"], default="plain",
                   help="plain: this machine, decoding and detection in --workers threads; ray: a Ray Data job "
                        "(the `ray` extra), locally or on --ray-address; it writes no annotated images (default: plain)")
    b.add_argument("--workers", type=int, default=None, metavar="N",
                   help="plain: decoding + detection threads, 1 = one photo at a time; ray: one-CPU actors "
                        "(default: the CPU cores for plain, the cluster's CPUs for ray)")
    b.add_argument("--parquet", default=None, metavar="DIR",
                   help="also write the results as a Parquet dataset (one row per image, the faces as a list of "
                        "structs; a folder or a URI; needs pyarrow, in the `ray` extra)")
    b.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this Ray cluster (host:6379, ray://host:10001 or auto) instead of starting a local "
                        "Ray for the command")


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

    if args.resume and not _is_file_output(args.jsonl) and not args.parquet:
        return ("--resume needs --jsonl FILE (or --parquet DIR): the results written are the record of which "
                "inputs are done")
    if args.engine != "ray" and args.ray_address:
        return "--ray-address needs --engine ray"
    out_dir = Path(args.output)
    if not args.no_annotate and out_dir.exists() and not out_dir.is_dir():
        return f"-o {display_name(out_dir)}: is a file, not a folder for the annotated images"
    if args.resume or args.overwrite:
        return None
    for path in (args.jsonl, args.csv):
        if _is_file_output(path) and os.path.exists(path) and os.path.getsize(path) > 0:
            return (f"{display_name(path)} exists; add --resume to continue that batch or --overwrite to "
                    "replace it")
    if args.parquet:
        from ..writers import parquet_files

        if parquet_files(args.parquet):
            return (f"{display_name(args.parquet)} has results; add --resume to continue that batch or "
                    "--overwrite to replace them")
    existing = [t for t in targets if t is not None and t.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        return (f"{display_name(existing[0])} exists{more}; add --overwrite to replace the annotated images, "
                "--resume to continue a batch, or choose another -o")
    return None


def run(args: argparse.Namespace) -> int:
    from ..annotate import annotate
    from ..batch import expand_inputs, failure_message
    from ..errors import MaskwatchError
    from ..imageio import display_name, write_image
    from ..labels import LabelCounts
    from ..writers import CsvWriter, JsonlWriter, error_record, resume_csv
    from . import error
    from .common import format_counts, note, open_output, pipeline_from_args, progress, require

    if args.engine == "ray":
        require("detect --engine ray", "ray", "ray")
    if args.parquet:
        require("detect --parquet", "ray", "pyarrow")
    if args.engine == "ray" and not args.no_annotate:
        note("the Ray engine writes no annotated images, only the results (--jsonl, --parquet, --csv)")
        args.no_annotate = True
    inputs = expand_inputs(args.inputs)
    out_dir = Path(args.output)
    used: set[Path] = set()
    # every target is named in input order, done or not, so that a resumed batch names them alike
    targets = [None if err or args.no_annotate else _output_path(out_dir, Path(path), used) for path, err in inputs.items]
    problem = _check_outputs(args, targets)
    if problem:
        error(problem)
        return 2
    done: set[str] = set()
    csv_has_header = False
    if args.resume:
        done, record_of = _resume(args)
        if args.csv:
            csv_has_header = resume_csv(args.csv, done)
    todo = [(item, target) for item, target in zip(inputs.items, targets) if str(item[0]) not in done]
    if args.resume:
        note(f"resuming: {len(inputs.items) - len(todo)} of {len(inputs.items)} input(s) already in {record_of}")
    engine = _engine(args, functools.partial(pipeline_from_args, _detector_args(args)))
    failed = 0
    counts = LabelCounts()
    per_photo = args.per_photo or getattr(args, "verbose", False)
    mode = "a" if args.resume else "w"
    with contextlib.ExitStack() as stack:
        jsonl = JsonlWriter(stack.enter_context(open_output(args.jsonl, mode)))
        csv = CsvWriter(stack.enter_context(open_output(args.csv, mode)), header=not csv_has_header) if args.csv else None
        parquet = _parquet_writer(args, stack)
        stack.enter_context(engine)  # a local Ray starts here and stops at the end
        results = engine.run(item for item, _ in todo)
        # results first: zip then runs the engine to its end (its summary) after the last result
        bar = progress(zip(results, todo), len(todo), "detect",
                       enabled=len(todo) > 1 and not args.quiet and args.engine == "plain")  # Ray shows its own
        for result, (_, target) in bar:
            record = result.record
            if target is not None and result.error is None:
                try:
                    write_image(target, annotate(result.image, result.faces, blur=args.blur, header=args.header))
                except (MaskwatchError, OSError) as exc:
                    record = error_record(result.source, failure_message(result.source, exc))
            if record["error"]:
                failed += 1
                error(record["error"])
            # the CSV rows first: a JSON line is written only once everything of its input is; the
            # Parquet row last (resuming both, an image is done once it is in both)
            if csv:
                csv.write(record)
            jsonl.write(record)
            if parquet:
                parquet.write(record)
            if not record["error"]:
                mine = result.faces.counts() if result.faces is not None else LabelCounts.of_record(record)
                counts = counts + mine
                if per_photo:
                    note(f"{display_name(result.source)}: {format_counts(mine)}")
        if getattr(engine, "summary", None):
            note(engine.summary)
    if counts.images and not args.quiet:
        note(f"{counts.images} photo(s): {format_counts(counts)}")
    if inputs.skipped:
        note("in the folders given, " + inputs.skipped_summary())
    if failed:
        error(f"{failed} of {len(todo)} input(s) failed")
    return 1 if failed else 0


def _detector_args(args: argparse.Namespace) -> argparse.Namespace:
    """The flags `pipeline_from_args` reads, alone: what a Ray actor receives to build its pipeline."""
    keep = ("detector", "scale", "min_side", "score_threshold", "min_face", "tile", "calibrate", "classifier", "runtime")
    return argparse.Namespace(**{k: getattr(args, k) for k in keep if hasattr(args, k)})


def _engine(args: argparse.Namespace, make_pipeline):
    if args.engine == "ray":
        from ..batch import RayEngine

        return RayEngine(make_pipeline, address=args.ray_address, actors=args.workers, progress=not args.quiet)
    from ..batch import LocalEngine

    return LocalEngine(make_pipeline, workers=args.workers)


def _resume(args: argparse.Namespace) -> tuple[set[str], str]:
    """The sources already done (in --jsonl, in --parquet, in both when both are given) and where."""
    from ..imageio import display_name
    from ..writers import keep_jsonl, resume_jsonl, resume_parquet

    if not args.parquet:
        return resume_jsonl(args.jsonl), display_name(args.jsonl)
    in_parquet = resume_parquet(args.parquet)
    if not _is_file_output(args.jsonl):
        return in_parquet, display_name(args.parquet)
    in_jsonl = resume_jsonl(args.jsonl)
    if in_jsonl != in_parquet:  # killed between the two (the Parquet file of the last rows unfinished)
        keep_jsonl(args.jsonl, in_jsonl & in_parquet)
    return in_jsonl & in_parquet, f"{display_name(args.jsonl)} and {display_name(args.parquet)}"


def _parquet_writer(args: argparse.Namespace, stack: contextlib.ExitStack):
    if not args.parquet:
        return None
    from ..writers import ParquetWriter

    return stack.enter_context(ParquetWriter(args.parquet, replace=args.overwrite))
