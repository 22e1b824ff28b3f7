"""Rebuild the default mask classifier shipped in src/maskwatch/models/ from the shared data.

    python scripts/build_default_model.py --shared ../shared

Trains (two phases, CPU is fine: about 30 minutes on 2 cores), evaluates on the group-split
validation side, exports fp32 + int8 ONNX with the spec embedded, and writes MODEL_CARD.md with the
measured numbers. The data are read in place and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from maskwatch.train.engine import TrainConfig, fit
from maskwatch.train.evaluate import evaluate_run
from maskwatch.train.export import export_checkpoint

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "maskwatch" / "models"


def config(shared: Path, run_dir: Path, cache_dir: Path) -> TrainConfig:
    data = shared / "data"
    return TrainConfig(
        data=[str(data / "fmd"), str(data / "crops" / "fm12k"), str(data / "crops" / "maskedface-net")],
        recrop=[str(data / "crops" / "prajnasb")],  # head-and-shoulders photos: cut the face like inference
        output=str(run_dir),
        pretrained=str(shared / "models" / "mobilenet_v2_imagenet.pth"),
        cache_dir=str(cache_dir),
        arch="mobilenet_v2",
        head="seed",
        input_size=128,
        crop_margin=0.2,
        head_epochs=8,
        epochs=12,
        patience=3,
        version="1",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "default-classifier")
    p.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "cache")
    p.add_argument("--skip-train", action="store_true", help="reuse the run folder's best.pt")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = config(args.shared.resolve(), args.run_dir, args.cache_dir)
    if not args.skip_train:
        fit(cfg)
    val = evaluate_run(args.run_dir)
    exported = export_checkpoint(args.run_dir / "best.pt", args.run_dir / "mask_classifier.onnx", int8=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.run_dir / "mask_classifier.onnx", MODELS / "mask_classifier.onnx")
    shutil.copy(args.run_dir / "mask_classifier_int8.onnx", MODELS / "mask_classifier_int8.onnx")
    summary = {"val": {k: v for k, v in val.items() if k != "report"}, "export": exported}
    (MODELS / "mask_classifier.metrics.json").write_text(json.dumps(summary, indent=1))
    print(val["report"])
    print(json.dumps(exported, indent=1))


if __name__ == "__main__":
    main()
