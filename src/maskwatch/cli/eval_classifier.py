"""Evaluate a mask classifier (ONNX file or .pt checkpoint) on labelled face crops.

Data: --split RUN/split.json (the validation side of a training run, the default when --model is
a run's checkpoint) or --data DIR (every face of the sources). Writes <name>_metrics.json,
<name>_report.txt, <name>_confusion.png and <name>_roc_pr.png into --output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate a mask classifier (accuracy, report, confusion matrix, ROC/PR)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .onnx classifier or a training checkpoint .pt")
    p.add_argument("--data", action="append", default=None, metavar="DIR", help="labelled source(s) to evaluate on")
    p.add_argument("--recrop", action="append", default=None, metavar="DIR", help="sources whose faces are re-cut")
    p.add_argument("--split", default=None, help="a run's split.json; evaluates its validation side")
    p.add_argument("-o", "--output", default="maskwatch-eval", help="folder for the report")
    p.add_argument("--name", default="eval", help="file name prefix of the report")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from .common import require

    if args.model.endswith(".pt"):
        require("eval-classifier --model CHECKPOINT.pt", "train", "torch", "torchvision")
    require("eval-classifier", "eval", "sklearn", "matplotlib")
    from ..train.evaluate import evaluate_model

    split = args.split
    if split is None and not args.data and args.model.endswith(".pt"):
        split = str(Path(args.model).parent / "split.json")
    if split is None and not args.data and not args.recrop:
        raise ValueError("give --data DIR or --split RUN/split.json")
    result = evaluate_model(args.model, Path(args.output), data=args.data or [], recrop=args.recrop or [],
                            split=split, name=args.name, progress=not args.quiet)
    print(result["report"])
    for key, sub in result["subsets"].items():
        rec = ", ".join(f"{k} {v['recall']:.3f}" for k, v in sub["per_class"].items() if v["support"])
        print(f"{key}: n={sub['n']} accuracy {sub['accuracy']:.4f}; recall: {rec}")
    print(f"report: {args.output}/{args.name}_metrics.json")
    return 0
