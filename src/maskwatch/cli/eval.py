"""Evaluate face and mask detection end to end on a Pascal VOC dataset (DIR/images + DIR/annotations).

Runs the pipeline (detector + mask classifier) on every image of the split and reports per-class
AP@0.5 (all-point), mAP@0.5, mAP@0.5:0.95, class-agnostic face AP and recall, the two-class
compliance view (with_mask vs. without_mask + mask_worn_incorrectly), AP by face size, the
confusion matrix of matched faces, PR curves and latency. Writes <name>_metrics.json,
<name>_report.md and PNG plots into --output.

--classifier none evaluates the detector alone: faces only for yunet / ssd / haar, one pass for
--detector maskwatch (its own classes).

--split auto (default) evaluates on the validation side of the default classifier's group split
when DIR is the shared fmd folder (its training faces must not be scored), else on every image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "evaluate face + mask detection on a Pascal VOC dataset (mAP, recall, latency)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .common import add_detector_arguments

    p.add_argument("--data", required=True, metavar="DIR", help="Pascal VOC dataset: DIR/images, DIR/annotations/*.xml")
    p.add_argument("--split", default="auto",
                   help="val / train: a side of the default classifier's group split; all: every image; "
                        "or a run's split.json (its val side); auto: val for the shared fmd layout, else all")
    p.add_argument("-o", "--output", default="maskwatch-eval", help="folder for the report")
    p.add_argument("--name", default="detection", help="file name prefix of the report")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images (default: all)")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_detector_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_dataset
    from ..evaluation.report import write_report
    from . import error
    from .common import pipeline_from_args, progress
    from .common import require
    from .layout import SHARED_LAYOUT

    if args.split != "all" and not str(args.split).endswith(".json"):
        require(f"eval --split {args.split}", "eval", "sklearn")  # the group split of the validation side
    if not args.no_plots:
        require("eval (its plots; --no-plots goes without)", "eval", "matplotlib")

    # --calibrate asks for the measured calibration, which the registry applies once, inside any tiling
    pipe = pipeline_from_args(args)
    described = pipe.describe()
    metrics = evaluate_dataset(pipe, args.data, split=args.split, limit=args.limit, layout=SHARED_LAYOUT,
                               progress=lambda it, n: progress(it, n, "eval", enabled=not args.quiet),
                               on_error=error)
    det = described["detector"]
    metrics["config"] = {"data": str(args.data), "split": metrics["split"], "detector": args.detector,
                         "scale": det.get("scale"), "score_threshold": det.get("score_threshold"),
                         "min_face": args.min_face, "box_calibration": det.get("calibration"),
                         "classifier": None if described["classifier"] is None else described["classifier"]["path"],
                         "pipeline": described}
    paths = write_report(metrics, Path(args.output), args.name, plots=not args.no_plots)
    summary = {k: metrics.get(k) for k in ("mAP50", "mAP50_95", "face_AP50", "face_recall")}
    summary["AP50"] = metrics.get("AP50")
    summary["ms_per_image"] = (metrics["latency"]["pipeline"] or {}).get("median_ms")
    print(json.dumps(summary))
    print(f"report: {paths['markdown']}", flush=True)
    return 0
