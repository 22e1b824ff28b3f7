"""Export a trained classifier checkpoint to ONNX (with its spec as metadata), int8 ONNX or TFLite.

The ONNX file is verified in ONNX Runtime against PyTorch (max abs difference printed). --int8
quantises it statically, calibrated on training crops of the run, and reports validation
accuracy before and after.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "export a classifier to ONNX (fp32/int8) or TFLite"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="training checkpoint (RUN/best.pt)")
    p.add_argument("-o", "--output", default=None, help="output .onnx file (default RUN/mask_classifier.onnx)")
    p.add_argument("--int8", action="store_true", help="also write an int8-quantized model (<output>_int8.onnx)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx", help="tflite needs the 'tflite' extra")
    p.add_argument("--calibration", type=int, default=256, help="number of calibration crops for --int8")


def run(args: argparse.Namespace) -> int:
    from .common import require

    require("export", "train", "torch", "torchvision", "onnx")
    if args.format == "tflite":
        require("export --format tflite", "tflite", "onnx2tf", "tensorflow")
    from ..train.export import export_checkpoint

    out = Path(args.output) if args.output else Path(args.checkpoint).parent / "mask_classifier.onnx"
    result = export_checkpoint(args.checkpoint, out, int8=args.int8, tflite=args.format == "tflite",
                               calibration=args.calibration)
    print(json.dumps(result, indent=2))
    return 0
