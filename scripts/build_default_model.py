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
import os
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
        hash_split=[str(data / "ilc")],  # real incorrectly worn masks; the detector's ilc validation photos held out
        output=str(run_dir),
        pretrained=str(shared / "models" / "mobilenet_v2_imagenet.pth"),
        cache_dir=str(cache_dir),
        arch="mobilenet_v2",
        head="seed",
        input_size=128,
        crop_margin=0.2,
        head_epochs=8,
        epochs=10,
        balance="source",
        patience=3,
        version="2",
    )


def _counts(rows: list[dict]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for r in rows:
        out[(r["source"], r["label"])] = out.get((r["source"], r["label"]), 0) + 1
    return out


def model_card(cfg: TrainConfig, val: dict, exported: dict, split: dict) -> str:
    """MODEL_CARD.md from the measured numbers."""
    train_c, val_c = _counts(split["train"]), _counts(split["val"])
    rows = "\n".join(f"| {s} | {l} | {train_c.get((s, l), 0)} | {val_c.get((s, l), 0)} |"
                      for s, l in sorted(set(train_c) | set(val_c)))
    per = "\n".join(f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1-score']:.4f} | "
                     f"{m.get('roc_auc', float('nan')):.4f} | {int(m['support'])} |" for name, m in val["per_class"].items())
    subs = "\n".join(
        f"| {key} | {sub['n']} | {sub['accuracy']:.4f} | "
        + " | ".join(f"{sub['per_class'][k]['recall']:.4f}" if sub["per_class"][k]["support"] else "–"
                     for k in ("with_mask", "without_mask", "mask_worn_incorrectly")) + " |"
        for key, sub in val["subsets"].items())
    cm = "\n".join("| " + name + " | " + " | ".join(str(v) for v in row) + " |"
                    for name, row in zip(val["labels"], val["confusion_matrix"]))
    onnx = exported["onnx"]
    return f"""{CARD_HEADING} (`mask_classifier.onnx`, version {cfg.version})

Classifies one face crop as `with_mask`, `without_mask` or `mask_worn_incorrectly`.
Rebuilt from the shared data by `python scripts/build_default_model.py` (CPU: about 30 minutes on 2 cores,
47 on one core beside another training run).

## Model
- torchvision MobileNetV2, ImageNet weights (`mobilenet_v2_imagenet.pth`, BSD-3), head `{cfg.head}`
  (average pool, dense 128 + ReLU, dropout 0.5, 3 logits; softmax at inference).
- Input: square RGB crop of the face box enlarged by {cfg.crop_margin:.0%} (`maskwatch.ops.crop_faces`),
  {cfg.input_size}x{cfg.input_size}, normalised with ImageNet mean/std. All of it is stored in the ONNX
  metadata (`maskwatch_spec`), so the file reloads with nothing else.
- Training: phase 1, {cfg.head_epochs} epochs of the head on the frozen backbone (cached embeddings);
  phase 2, up to {cfg.epochs} epochs fine-tuning the top 5 blocks (lr {cfg.lr}, cosine, AdamW,
  label smoothing {cfg.label_smoothing}, weighted sampling (classes equal; within a class, sources
  by the square root of their size), early stopping on
  validation loss, patience {cfg.patience}), augmentation: rotation, zoom, shift, shear, flip, small
  faces (12-32 px) upscaled, blur, low light, colour jitter, grayscale, JPEG. Seed {cfg.seed}.
- Files: `mask_classifier.onnx` fp32, {onnx["size_bytes"] / 1e6:.2f} MB (ONNX Runtime vs PyTorch max
  abs logit difference {onnx["max_abs_diff"]:.1e}); `mask_classifier_int8.onnx` static int8 (QDQ,
  per-channel, 7-bit weights so that CPUs without VNNI compute the same function), {exported["int8"]["size_bytes"] / 1e6:.2f} MB.

## Data and licences
| source | what | licence |
|---|---|---|
| fmd | Face Mask Detection (andrewmvd, Kaggle), training part: VOC boxes cut into face crops | CC0 1.0 |
| ilc | face-mask-dataset-ilc-2021 (web photos, 467 real incorrectly worn masks): VOC boxes cut into face crops, split by photo as the detector splits it (`hash_split`) | **none stated; used for research** |
| fm12k | Face Mask 12K (ashishjangra27, Kaggle); without_mask are CelebA faces | as published on Kaggle (CelebA: non-commercial research) |
| prajnasb | Prajna Bhandary's 1,376 images; faces re-cut with YuNet (`--recrop`) | none stated |
| maskedface-net | MaskedFace-Net (Cabani et al. 2020) subsets on FFHQ faces | **CC BY-NC-SA 4.0** |

Because MaskedFace-Net is CC BY-NC-SA 4.0, CelebA is for non-commercial research and ilc states no
licence, **the weights are for non-commercial use** unless retrained on data you may use commercially
(`maskwatch train --data ...`).

Split: stratified by label and grouped (the same person `N.jpg`/`N-with-mask.jpg`, FFHQ id, fmd source
photo and `duplicates.json` group never on both sides), {cfg.val_fraction:.0%} validation; ilc by a
hash of its duplicate groups, the detector's split, so neither model trains on the other's validation photos.

| source | label | train | validation |
|---|---|---|---|
{rows}

## Results on the validation split ({val["n"]} crops)
Accuracy **{val["accuracy"]:.4f}** (fp32 ONNX {exported.get("fp32_val_accuracy", float("nan")):.4f},
int8 ONNX {exported.get("int8_val_accuracy", float("nan")):.4f}).

| class | precision | recall | F1 | ROC AUC | support |
|---|---|---|---|---|---|
{per}

Confusion matrix (rows true, columns predicted: with_mask, without_mask, mask_worn_incorrectly):

| true | with | without | incorrect |
|---|---|---|---|
{cm}

By subset (recall per class; `fmd_gt24` = fmd faces whose shorter side is above 24 px):

| subset | n | accuracy | with_mask | without_mask | mask_worn_incorrectly |
|---|---|---|---|---|---|
{subs}

## Limits
- Trained on web photos (ilc), synthetic masks (MaskedFace-Net, prajnasb) and small crowd faces (fmd);
  the real `mask_worn_incorrectly` examples are 94 fmd and about 370 ilc faces (ilc's mostly close-ups),
  so this class is still the least reliable on real crowd photos.
- Faces under about 16 px carry little information; the detector's `--min-face` can drop them.
"""


CARD_HEADING = "# Model card: maskwatch default mask classifier"


def write_card(path: Path, card: str) -> None:
    """Replace the classifier's section of the shared model card (from its heading to the next model's
    heading), keeping the other models' sections before and after it."""
    text = path.read_text() if path.exists() else ""
    if CARD_HEADING not in text:
        path.write_text((text + "\n" if text else "") + card)
        return
    start = text.index(CARD_HEADING)
    end = text.find("\n# Model card:", start + len(CARD_HEADING))
    path.write_text(text[:start] + card + ("" if end < 0 else text[end:]))


def requantize(cfg: TrainConfig) -> dict:
    """The shipped fp32 classifier quantized again (`maskwatch.train.export.quantize_int8`), calibrated
    on the crops a build would use (the same group split, the same 256 training samples); the
    validation accuracy of both files is recomputed and stored in mask_classifier.metrics.json."""
    from maskwatch.classifier import MaskClassifier
    from maskwatch.train.engine import split_samples
    from maskwatch.train.evaluate import evaluate_samples
    from maskwatch.train.export import calibration_crops, quantize_int8

    samples, train_idx, val_idx = split_samples(cfg)
    fp32, int8 = MODELS / "mask_classifier.onnx", MODELS / "mask_classifier_int8.onnx"
    spec = MaskClassifier(fp32).spec
    result = quantize_int8(fp32, int8, calibration_crops([samples[i] for i in train_idx], spec), spec)
    val, report_dir = [samples[i] for i in val_idx], Path(cfg.output) / "requantize_report"
    report_dir.mkdir(parents=True, exist_ok=True)
    for key, path, name in (("fp32_val_accuracy", fp32, "fp32"), ("int8_val_accuracy", int8, "int8")):
        result[key] = evaluate_samples(path, val, report_dir, name, progress=False)["accuracy"]
    metrics_path = MODELS / "mask_classifier.metrics.json"
    metrics = json.loads(metrics_path.read_text())
    export = metrics["export"]
    export.setdefault("before_requantize", {k: export.get(k) for k in ("fp32_val_accuracy", "int8_val_accuracy")})
    export["int8"] = {"path": str(int8.relative_to(ROOT)), "size_bytes": result["size_bytes"]}
    export.update({k: result[k] for k in ("fp32_val_accuracy", "int8_val_accuracy")})  # one validation set for both
    metrics_path.write_text(json.dumps(metrics, indent=1))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "default-classifier")
    p.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "cache")
    p.add_argument("--skip-train", action="store_true", help="reuse the run folder's best.pt")
    p.add_argument("--requantize", action="store_true",
                   help="no training: quantize the shipped fp32 model again with the current int8 settings, "
                        "calibrated on the same training crops as a build, and install it")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared.resolve() / "models"))  # prajnasb is re-cut by YuNet
    cfg = config(args.shared.resolve(), args.run_dir, args.cache_dir)
    if args.requantize:
        print(json.dumps(requantize(cfg), indent=1))
        return
    if not args.skip_train:
        fit(cfg)
    val = evaluate_run(args.run_dir)
    exported = export_checkpoint(args.run_dir / "best.pt", args.run_dir / "mask_classifier.onnx", int8=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.run_dir / "mask_classifier.onnx", MODELS / "mask_classifier.onnx")
    shutil.copy(args.run_dir / "mask_classifier_int8.onnx", MODELS / "mask_classifier_int8.onnx")
    summary = {"val": {k: v for k, v in val.items() if k != "report"}, "export": exported}
    (MODELS / "mask_classifier.metrics.json").write_text(json.dumps(summary, indent=1))
    split = json.loads((args.run_dir / "split.json").read_text())
    write_card(MODELS / "MODEL_CARD.md", model_card(cfg, val, exported, split))
    print(val["report"])
    print(json.dumps(exported, indent=1))


if __name__ == "__main__":
    main()
