"""Train the three-class mask classifier by transfer learning (extra: train).

Phase 1 trains a new head on a frozen ImageNet backbone (from cached embeddings); phase 2
fine-tunes the top of the backbone on augmented crops at a lower learning rate, with early
stopping on validation loss. The run folder gets config.json, split.json, last.pt / best.pt
checkpoints, history.json, curves and the validation report (metrics JSON + PNG plots).
Settings: dataclass defaults -> optional --config YAML/JSON -> flags.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

HELP = "train the mask classifier"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="a data source (repeatable): class-per-folder crops or a Pascal VOC dataset")
    p.add_argument("--recrop", action="append", default=None, metavar="DIR",
                   help="a class-per-folder source whose images show more than the face; faces are re-cut with YuNet")
    p.add_argument("--config", default=None, help="YAML or JSON file of settings (flags override it)")
    p.add_argument("-o", "--output", default=None, help="run folder (default runs/classifier)")
    p.add_argument("--arch", default=None, help="backbone: mobilenet_v2 (default), mobilenet_v3_small, "
                   "mobilenet_v3_large, efficientnet_b0, resnet18")
    p.add_argument("--head", choices=["seed", "lean"], default=None,
                   help="seed: dense 128 + ReLU + dropout 0.5 (the tutorials'); lean: dropout + linear (default seed)")
    p.add_argument("--pretrained", default=None,
                   help="ImageNet state dict for the backbone; 'torchvision' downloads it; 'none' from scratch")
    p.add_argument("--input-size", type=int, default=None, help="crop size in pixels (default 128)")
    p.add_argument("--head-epochs", type=int, default=None, help="phase 1 epochs (default 8)")
    p.add_argument("--epochs", type=int, default=None, help="phase 2 (fine-tune) epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=None, help="(default 64)")
    p.add_argument("--lr", type=float, default=None, help="fine-tune learning rate (default 2e-4)")
    p.add_argument("--val-fraction", type=float, default=None, help="validation share, split by group (default 0.2)")
    p.add_argument("--samples-per-epoch", type=int, default=None, help="0 = one pass (default 0)")
    p.add_argument("--balance", choices=["source", "sampler", "loss", "none"], default=None,
                   help="class imbalance: source (weighted sampling, classes equal, sources by sqrt size; "
                        "default), sampler (classes equal), loss (class-weighted loss), none")
    p.add_argument("--max-steps", type=int, default=None, help="stop each epoch after N steps (smoke tests)")
    p.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs (default 3)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default 1)")
    p.add_argument("--cache-dir", default=None, help="folder to cache cropped data between runs")
    p.add_argument("--device", default=None, help="auto (GPU if present), cpu, cuda")
    p.add_argument("--resume", default=None, help="continue from a last.pt checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace):
    from ..train.engine import TrainConfig

    values: dict = {}
    if args.config:
        text = Path(args.config).read_text()
        if args.config.endswith((".yaml", ".yml")):
            import yaml

            values.update(yaml.safe_load(text) or {})
        else:
            values.update(json.loads(text))
    names = {f.name for f in fields(TrainConfig)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"{args.config}: unknown settings {sorted(unknown)}")
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if values.get("pretrained") == "none":
        values["pretrained"] = None
    cfg = TrainConfig(**values)
    if not cfg.data and not cfg.recrop:
        raise ValueError("give at least one --data DIR")
    return cfg


def run(args: argparse.Namespace) -> int:
    from .common import require

    require("train", "train", "torch", "torchvision", "sklearn", "matplotlib")
    if args.config and args.config.endswith((".yaml", ".yml")):
        require("train --config FILE.yaml", "train", "yaml")
    from ..train.engine import fit
    from ..train.evaluate import evaluate_run

    cfg = config_from_args(args)
    out = fit(cfg, progress=not args.quiet)
    result = evaluate_run(out, progress=not args.quiet)
    print(result["report"])
    print(f"run folder: {out}  (best.pt, curves.png, val_confusion.png, val_metrics.json)")
    return 0
