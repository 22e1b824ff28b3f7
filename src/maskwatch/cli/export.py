"""Export a trained classifier checkpoint to ONNX (with its spec as metadata), int8 ONNX or TFLite;
or, with ``default`` in place of a checkpoint, the shipped default detector and classifier as LiteRT
(TFLite) files.

The ONNX file is verified in ONNX Runtime against PyTorch (max abs difference printed). --int8
quantises it statically, calibrated on training crops of the run, and reports validation
accuracy before and after.

``maskwatch export default --format tflite`` converts the shipped ONNX models (no checkpoint) to
float32 and full-integer int8 LiteRT files, writes each spec beside them as JSON, checks every file
against ONNX Runtime and prints sizes and differences (docs/mobile.md). By default the files go into
the model cache, where ``--runtime tflite`` / ``tflite-int8`` finds them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

HELP = "export a classifier to ONNX (fp32/int8) or TFLite; 'default': the shipped models as LiteRT files"

#: Where int8 calibration photos come from when --calibration-data is not given: the training side of
#: the shared fmd split (never its validation photos), relative to the working directory.
DEFAULT_CALIBRATION = Path("../shared/data/fmd")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="training checkpoint (RUN/best.pt), or 'default': the shipped detector and "
                                      "classifier (with --format tflite)")
    p.add_argument("-o", "--output", default=None,
                   help="output .onnx file, or for 'default' the output folder (default: RUN/mask_classifier.onnx; "
                        "for 'default' the model cache, where --runtime tflite finds the files)")
    p.add_argument("--int8", action="store_true", help="also write an int8-quantized model (<output>_int8.onnx)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx", help="tflite needs the 'tflite' extra")
    p.add_argument("--calibration", type=int, default=256,
                   help="number of calibration crops for --int8 (for 'default': of classifier crops; default 256)")
    p.add_argument("--calibration-data", default=None, metavar="DIR",
                   help="for 'default': photos that calibrate the int8 files (a folder, or a VOC dataset whose "
                        f"validation split is left out); default: {DEFAULT_CALIBRATION} if it exists")
    p.add_argument("--calibration-photos", type=int, default=64, metavar="N",
                   help="for 'default': how many calibration photos (a seeded random choice; default 64)")


def calibration_photos(data: str | None, n: int) -> list[Path]:
    """``n`` photos of ``data`` (a VOC dataset: its training side; a folder: every image in it)."""
    import numpy as np

    from ..datasets import is_voc_dataset, resolve_split
    from ..imageio import IMAGE_SUFFIXES
    from .layout import SHARED_LAYOUT

    root = Path(data) if data else DEFAULT_CALIBRATION
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no calibration photos; pass --calibration-data DIR (a folder of photos)")
    paths = None
    if is_voc_dataset(root):  # the shared fmd set: its training side, never the photos the benchmarks score
        _, paths = resolve_split(root, "train" if SHARED_LAYOUT.sources(root) is not None else "all", SHARED_LAYOUT)
        root = root / "images"
    if paths is None:
        paths = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    paths = sorted(Path(p) for p in paths)
    if not paths:
        raise FileNotFoundError(f"{root}: no image files for calibration")
    return [paths[i] for i in np.random.default_rng(0).permutation(len(paths))[:n]]


def run_default(args: argparse.Namespace) -> int:
    from .. import registry
    from ..imageio import read_image
    from ..train.litert import export_default
    from .common import note

    if args.format != "tflite":
        raise ValueError("the shipped models are ONNX files already; 'maskwatch export default' takes --format tflite")
    out = Path(args.output) if args.output else registry.cache_dir()
    paths = calibration_photos(args.calibration_data, args.calibration_photos)
    note(f"calibrating int8 on {len(paths)} photos of {paths[0].parent}")
    with contextlib.redirect_stdout(sys.stderr):  # the converters' own prints; stdout is the JSON report
        result = export_default(out, [read_image(p) for p in paths], max_crops=args.calibration, progress=note)
    result["output"] = str(out)
    print(json.dumps(result, indent=2))
    return 0


def run(args: argparse.Namespace) -> int:
    from .common import require

    if args.checkpoint == "default":
        require("export default --format tflite", "tflite", "onnx2tf", "tensorflow")
        return run_default(args)
    require("export", "train", "torch", "torchvision", "onnx")
    if args.format == "tflite":
        require("export --format tflite", "tflite", "onnx2tf", "tensorflow")
    from ..train.export import export_checkpoint

    out = Path(args.output) if args.output else Path(args.checkpoint).parent / "mask_classifier.onnx"
    result = export_checkpoint(args.checkpoint, out, int8=args.int8, tflite=args.format == "tflite",
                               calibration=args.calibration)
    print(json.dumps(result, indent=2))
    return 0
