"""Train maskwatch's own face + mask detector (MobileNetV2 + CenterNet-style head; extra: train).

Trains on a Pascal VOC dataset (DIR/images + DIR/annotations) minus the evaluation split (--split,
as in 'maskwatch eval'), validates mAP@0.5 every epoch, keeps best.pt, stops early, resumes with
--resume RUN/last.pt, and exports RUN/maskwatch_detector.onnx (spec in its metadata). Use the
result with 'maskwatch eval --detector maskwatch' after copying it into MASKWATCH_MODELS, or from
Python with create_detector("maskwatch", model_path=...).
"""

from __future__ import annotations

import argparse
import json

HELP = "train maskwatch's face + mask detector"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.detector_config import DetectorConfig

    d = DetectorConfig()
    p.add_argument("--data", required=True, metavar="DIR", help="Pascal VOC dataset")
    p.add_argument("-o", "--output", default=d.output, help="run folder")
    p.add_argument("--pretrained", default=None,
                   help="ImageNet mobilenet_v2 state dict; 'torchvision' downloads it; default: none (from scratch)")
    p.add_argument("--split", default=d.split, help="held-out evaluation split (see 'maskwatch eval --split')")
    p.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, cosine)")
    p.add_argument("--crop-sizes", type=int, nargs="+", default=list(d.crop_sizes), help="training crop sides (one per batch)")
    p.add_argument("--val-scale", type=float, default=d.val_scale, help="input scale for validation and the export")
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping patience in epochs")
    p.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch, help="0: one pass over the images")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="cap steps per epoch (smoke tests); 0: no cap")
    p.add_argument("--max-images", type=int, default=d.max_images, help="use only N train / val images (smoke tests)")
    p.add_argument("--box-loss", choices=["l1", "l1+giou"], default=d.box_loss,
                   help="box regression loss: L1 on offset + log size, optionally plus GIoU of the boxes")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--resume", default=None, help="continue from a last.pt checkpoint")
    p.add_argument("--init", default=None, help="start from a checkpoint's weights with a new schedule (fine-tune)")
    p.add_argument("--closeups", default=None, metavar="DIR",
                   help="also train on close-up photos of DIR/<source>/<class>/ (one face each, boxed by YuNet)")
    p.add_argument("--closeups-per-class", type=int, default=50, help="close-ups per class folder with --closeups")
    p.add_argument("--no-export", action="store_true", help="do not export ONNX after training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from .common import require

    require("train-detector", "train", "torch", "torchvision", "sklearn")
    from ..train.detector import DetectorConfig, export, fit

    cfg = DetectorConfig(data=args.data, output=args.output, pretrained=args.pretrained, split=args.split,
                         epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, crop_sizes=tuple(args.crop_sizes),
                         val_scale=args.val_scale, patience=args.patience, steps_per_epoch=args.steps_per_epoch,
                         box_loss=args.box_loss,
                         max_steps=args.max_steps, max_images=args.max_images, threads=args.threads, seed=args.seed,
                         resume=args.resume, init=args.init, closeups=args.closeups,
                         closeups_per_class=args.closeups_per_class if args.closeups else 0)
    from .layout import SHARED_LAYOUT

    out = fit(cfg, progress=not args.quiet, layout=SHARED_LAYOUT)
    print(f"run folder: {out}  (best.pt, last.pt, history.json)")
    if not args.no_export:
        result = export(out / "best.pt", out / "maskwatch_detector.onnx")
        print(json.dumps({k: result[k] for k in ("path", "max_abs_diff", "size_bytes")}))
    return 0
