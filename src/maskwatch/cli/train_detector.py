"""Fine-tune maskwatch's single-pass face + mask detector on your own photos (extra: train).

Trains on Pascal VOC folders (DIR/images + DIR/annotations, boxes labelled with_mask /
without_mask / mask_worn_incorrectly or the usual aliases), starting from the detector in the
package. Each folder is split into training and validation photos by a hash of its duplicate
groups (DIR/duplicates.json where there is one: near-duplicates never sit on both sides). The
training is the package model's recipe (class-balanced sampling, face size drawn independently of
the class, mosaic, copy-paste of incorrectly worn faces, flip, colour, blur); validation mAP@0.5
every --eval-every epochs, epoch 0 being the package model as it is; best.pt kept; the same command
again resumes. The GPU is used where there is one. The result, RUN/maskwatch_rfb.onnx (spec in its
metadata), runs anywhere a detector is named:

    maskwatch detect --detector RUN/maskwatch_rfb.onnx photos/
    maskwatch eval --data DIR --split RUN/split.json --detector RUN/maskwatch_rfb.onnx   # held-out photos

The package's own model is rebuilt from the shared data by scripts/build_rfb.py, the earlier
CenterNet detector (yunet+maskwatch) by scripts/build_detector.py.
"""

from __future__ import annotations

import argparse
import json

HELP = "fine-tune the single-pass face + mask detector on your photos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.rfb.config import RFBConfig

    d = RFBConfig()
    p.add_argument("--data", required=True, action="append", metavar="DIR",
                   help="Pascal VOC dataset (images/ + annotations/); repeat for several")
    p.add_argument("-o", "--output", default="runs/detector", help="run folder (default: runs/detector)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--init", default=None, metavar="FILE",
                       help="exported detector to start from (default: the one in the package)")
    start.add_argument("--pretrained", default=None, metavar="PTH",
                       help="start from the published Ultra-Light RFB-640 masked-face weights "
                            "(ultralight_RFB-640-masked_face-v2.pth) instead")
    p.add_argument("--epochs", type=int, default=10, help="epochs (default: 10)")
    p.add_argument("--steps", type=int, default=d.steps_per_epoch, help="batches per epoch")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="training inputs per batch")
    p.add_argument("--size", type=int, default=d.size, help="training input side in pixels")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (AdamW, warm-up, cosine; default: 5e-4)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of each folder held out for validation")
    p.add_argument("--eval-every", type=int, default=2, help="validate every N epochs (and after the last; default: 2)")
    p.add_argument("--assign", choices=("iou", "atss"), default=d.assign,
                   help="which priors learn each face: upstream's IoU matching or ATSS")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="processes making training batches (-1: none on a CPU, all cores but one beside a GPU)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--max-images", type=int, default=0, help="use only N photos per folder (smoke tests)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .common import note, require

    require("train-detector", "train", "torch")
    for folder in args.data:
        if not (Path(folder) / "annotations").is_dir():
            raise FileNotFoundError(f"--data {folder}: no annotations/ folder (Pascal VOC: images/ + annotations/)")
    from .. import registry
    from ..train.rfb.export import export_onnx
    from ..train.rfb.loop import RFBConfig, fit

    init = None if args.pretrained else str(args.init or registry.resolve("maskwatch-rfb"))
    cfg = RFBConfig(output=args.output, data=list(args.data), init=init, pretrained=args.pretrained,
                    epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch_size, size=args.size,
                    lr=args.lr, val_fraction=args.val_fraction, eval_every=args.eval_every, assign=args.assign,
                    workers=args.workers, threads=args.threads, seed=args.seed, max_images=args.max_images,
                    version="fine-tuned")
    out = fit(cfg, progress=not args.quiet)
    history = json.loads((out / "history.json").read_text())
    scored = [row for row in history if any(isinstance(v, dict) and "mAP50" in v for v in row.values())]
    trained = [row for row in scored if row["epoch"] > 0]
    best = max(trained, key=lambda r: r["score"]) if trained else None
    for row in scored[:1] + ([best] if best is not None else []):  # the start, and the best epoch (exported)
        print(f"epoch {row['epoch']}: validation mAP@0.5 {', '.join(f'{k} {v:.3f}' for k, v in _maps(row).items())}")
    result = export_onnx(out / "best.pt", out / "maskwatch_rfb.onnx")
    print(json.dumps({k: result[k] for k in ("path", "max_abs_diff", "size_bytes", "epoch")}))
    start = _maps(scored[0]) if scored and scored[0]["epoch"] == 0 else {}
    if best is not None and start and best["score"] < sum(start.values()) / len(start):
        note(f"the fine-tuned detector scores below the one it started from on these validation photos "
             f"({best['score']:.3f} vs {sum(start.values()) / len(start):.3f} mean mAP@0.5): "
             "more photos or epochs may help, or keep the one you had")
    print(f"use it: maskwatch detect --detector {result['path']} PHOTOS")
    return 0


def _maps(row: dict) -> dict[str, float]:
    """``{dataset: validation mAP@0.5}`` of one history row."""
    return {k: v["mAP50"] or 0.0 for k, v in row.items() if isinstance(v, dict) and "mAP50" in v}
