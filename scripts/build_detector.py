"""Rebuild maskwatch's face + mask detector from the shared fmd data (resumable).

    python scripts/build_detector.py --shared ../shared [--install]

Stage 1 trains on fmd minus the evaluation split (the default classifier's validation images),
CPU-sized: random 256-384 px crops of rescaled images from an in-memory cache, 40 steps of 10 images
per epoch, 70 epochs (the whole cosine schedule, about 50 minutes on two CPU cores; the shipped
model's best epoch was 56), the stride-4 stem frozen, inverse-frequency class weights, validation
mAP@0.5 every epoch. Stage 2 (RUN/finetune, about 10 minutes, early stopping after 8 epochs without
a better validation mAP) fine-tunes stage 1's best
weights for 20 epochs at lr 5e-4 with 50 close-up photos per class folder of the classification
sets added (boxes from YuNet, labels from the folders; never the false-face benchmark's photos):
the detector learns large faces and stops seeing faces in badges and shirts. Re-running continues
each stage from its last.pt.
Then exports the last stage's maskwatch_detector.onnx (spec in the metadata, checked against
PyTorch), records the one-pass validation mAP@0.5 at several input scales (the spec keeps the best; `maskwatch.load` uses
the settings measured by benchmarks/bench_detect.py), writes an int8 copy (static QDQ, calibrated on
training images) with its validation numbers, and, with --install, copies the int8 model (same
validation accuracy within 0.01, faster, 2.3 MB) into src/maskwatch/models/maskwatch_detector.onnx.
`--requantize` skips training: it quantizes the installed model again with the current int8 settings.
The data are read in place and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

from maskwatch.cli.layout import SHARED_LAYOUT
from maskwatch.train.detector import DetectorConfig, export, fit, quantize, split_images

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "maskwatch" / "models"


def config(shared: Path, run_dir: Path, epochs: int, threads: int = 0, class_weight_power: float = 1.0,
           patience: int = 12, init: Path | None = None, closeups_per_class: int = 0, lr: float = 2e-3,
           box_loss: str = "l1") -> DetectorConfig:
    return DetectorConfig(
        data=str(shared / "data" / "fmd"),
        output=str(run_dir),
        pretrained=str(shared / "models" / "mobilenet_v2_imagenet.pth"),
        split="val",
        crop_sizes=(256, 320, 384),
        scale_range=(0.6, 2.2),
        val_scale=1.5,
        batch_size=10,
        steps_per_epoch=40,
        epochs=epochs,
        patience=patience,
        threads=threads,
        class_weight_power=class_weight_power,
        lr=lr,
        box_loss=box_loss,
        init=str(init) if init else None,
        closeups=str(shared / "data" / "crops") if closeups_per_class else None,
        closeups_per_class=closeups_per_class,
        version="1",
    )


def choose_scale(onnx_path: Path, data: Path, scales: list[float]) -> dict:
    """Validation mAP@0.5 of the exported model, alone (one pass), at each input scale."""
    from maskwatch.detectors.maskwatch import MaskwatchDetector
    from maskwatch.evaluation import evaluate_dataset
    from maskwatch.pipeline import Pipeline

    rows = {}
    for s in scales:
        pipe = Pipeline(MaskwatchDetector(model_path=onnx_path, scale=s), None)
        m = evaluate_dataset(pipe, data, split="val", layout=SHARED_LAYOUT)
        rows[s] = {k: m[k] for k in ("mAP50", "face_AP50", "face_recall")}
        logging.info("scale %.2f: %s", s, rows[s])
    return rows


def requantize(cfg: DetectorConfig, out_dir: Path, install: bool) -> dict:
    """The installed int8 detector quantized again with the current settings (7-bit weights, see
    `maskwatch.train.export.quantize_qdq`) from its own dequantized weights: the fp32 original of a
    shipped model is not kept in the repository."""
    from maskwatch.spec import ModelSpec
    from maskwatch.onnxmodel import onnx_session
    from maskwatch.train.export import dequantize_qdq

    out_dir.mkdir(parents=True, exist_ok=True)
    installed = MODELS / "maskwatch_detector.onnx"
    fp32 = dequantize_qdq(installed, out_dir / "dequantized.onnx")
    spec = ModelSpec.from_metadata(onnx_session(installed).get_modelmeta().custom_metadata_map)
    scale = float(spec.extra.get("scale", 1.0))
    train_images, _ = split_images(cfg, SHARED_LAYOUT)
    int8_path = out_dir / "maskwatch_detector_int8.onnx"
    result = quantize(fp32, int8_path, train_images[::16], scale)
    result["val"] = choose_scale(int8_path, Path(cfg.data), [scale])[scale]
    (out_dir / "export.json").write_text(json.dumps(result, indent=1))
    if install:
        shutil.copy(int8_path, installed)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "detector")
    p.add_argument("--epochs", type=int, default=70)
    p.add_argument("--patience", type=int, default=100,
                   help="stage 1: stop after this many epochs without a better val mAP (default: never, the whole "
                        "cosine schedule; at 12 a run stopped at epoch 42 while face AP still rose)")
    p.add_argument("--class-weight-power", type=float, default=1.0,
                   help="class weights (n / n_c) ** power against the rare mask_worn_incorrectly")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--box-loss", choices=["l1", "l1+giou"], default="l1", help="box regression loss")
    p.add_argument("--finetune-epochs", type=int, default=20,
                   help="stage 2: fine-tune stage 1's best weights with close-up photos added (0: skip)")
    p.add_argument("--closeups-per-class", type=int, default=50,
                   help="stage 2: close-up photos per crops/<source>/<class> folder (YuNet boxes, folder labels)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.25, 1.5, 2.0])
    p.add_argument("--skip-train", action="store_true", help="reuse the last stage's best.pt")
    p.add_argument("--install", action="store_true", help="copy the model into src/maskwatch/models/")
    p.add_argument("--requantize", action="store_true",
                   help="no training: dequantize the installed int8 model and quantize it again with the current "
                        "settings (RUN/requantized/), calibrated like a build; with --install, replace it")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shared = args.shared.resolve()
    os.environ.setdefault("MASKWATCH_MODELS", str(shared / "models"))  # stage 2 boxes close-ups with YuNet
    cfg = config(shared, args.run_dir, args.epochs, args.threads, args.class_weight_power, args.patience,
                 box_loss=args.box_loss)
    if args.requantize:
        requantize(cfg, args.run_dir / "requantized", args.install)
        return
    stages = [cfg]
    if args.finetune_epochs:
        stages.append(config(shared, args.run_dir / "finetune", args.finetune_epochs, args.threads,
                             args.class_weight_power, patience=8, init=args.run_dir / "best.pt",
                             closeups_per_class=args.closeups_per_class, lr=5e-4, box_loss=args.box_loss))
    if not args.skip_train:
        for stage in stages:
            last = Path(stage.output) / "last.pt"
            if last.is_file():
                stage.resume = str(last)
            fit(stage, progress=False, layout=SHARED_LAYOUT)
    run_dir = Path(stages[-1].output)
    onnx_path = run_dir / "maskwatch_detector.onnx"
    export(run_dir / "best.pt", onnx_path)
    rows = choose_scale(onnx_path, shared / "data" / "fmd", args.scales)
    best = max(rows, key=lambda s: rows[s]["mAP50"] or 0)
    result = export(run_dir / "best.pt", onnx_path, scale=best)
    result["scales"] = rows
    result["scale"] = best
    train_images, _ = split_images(cfg, SHARED_LAYOUT)
    int8_path = run_dir / "maskwatch_detector_int8.onnx"
    result["int8"] = quantize(onnx_path, int8_path, train_images[::16], best)
    result["int8"]["val"] = choose_scale(int8_path, shared / "data" / "fmd", [best])[best]
    (run_dir / "export.json").write_text(json.dumps(result, indent=1))
    logging.info("exported %s (%.1f MB, scale %.2f)", onnx_path, result["size_bytes"] / 1e6, best)
    if args.install:
        MODELS.mkdir(parents=True, exist_ok=True)
        shutil.copy(int8_path, MODELS / "maskwatch_detector.onnx")  # int8: same accuracy, 2x faster, 2 MB


if __name__ == "__main__":
    main()
