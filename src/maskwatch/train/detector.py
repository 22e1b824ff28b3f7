"""Train maskwatch's face + mask detector (see `maskwatch.detection_model`) on a Pascal VOC dataset.

``fit(cfg)`` trains on the *training* side of the default classifier's group split (so the
classifier never sees detection-validation faces either), validates mAP@0.5 with the evaluation code
each epoch, keeps ``best.pt`` by validation mAP@0.5, stops early, and resumes from ``last.pt``.
``export(checkpoint, path)`` writes the ONNX model with its spec and checks it against PyTorch.

CPU-friendly: decoded images are cached in memory once, training uses random crops of a moderate
size (multi-scale: a crop side per batch) of randomly rescaled images, so faces appear at many sizes.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import detection_model as DM
from ..faces import Faces
from ..imageio import read_image
from ..labels import LABELS
from ..spec import ModelSpec
from ..voc import VocImage
from .detector_config import DetectorConfig  # noqa: F401  (torch-free, for the CLI)

log = logging.getLogger(__name__)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
STRIDE = 4
MAX_OBJECTS = 256


# -- model ------------------------------------------------------------------------------------------
def _conv_bn(cin: int, cout: int, k: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6(inplace=True))


def _dw_block(ch: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn(ch, ch, 3, groups=ch), _conv_bn(ch, ch, 1))


class CenterFaceNet(nn.Module):
    """MobileNetV2 trunk (strides 4/8/16/32) + top-down pyramid + CenterNet head at stride 4."""

    def __init__(self, num_classes: int = len(LABELS), channels: int = 64, pretrained: str | Path | None = None):
        super().__init__()
        import torchvision

        net = torchvision.models.mobilenet_v2()
        if pretrained == "torchvision":
            net = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")
        elif pretrained:
            net.load_state_dict(torch.load(pretrained, map_location="cpu", weights_only=True), strict=True)
        f = net.features
        self.c4, self.c8, self.c16, self.c32 = f[:4], f[4:7], f[7:14], f[14:18]
        self.lat = nn.ModuleList([_conv_bn(c, channels) for c in (24, 32, 96, 320)])
        self.smooth = nn.ModuleList([_dw_block(channels) for _ in range(3)])
        self.head = _dw_block(channels)
        self.out_heat = nn.Conv2d(channels, 1, 1)
        self.out_cls = nn.Conv2d(channels, num_classes, 1)
        self.out_box = nn.Conv2d(channels, 4, 1)
        nn.init.constant_(self.out_heat.bias, -4.6)  # prior 0.01: stable focal loss at the start
        self.frozen_stem = False

    def freeze_stem(self) -> None:
        """Fix the stride-2/4 layers (weights and BatchNorm statistics)."""
        self.frozen_stem = True
        for p in self.c4.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "CenterFaceNet":
        super().train(mode)
        if self.frozen_stem:
            self.c4.eval()
        return self

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits ``(heat, cls, box)`` at stride 4."""
        x4 = self.c4(x)
        x8 = self.c8(x4)
        x16 = self.c16(x8)
        x32 = self.c32(x16)
        p = self.lat[3](x32)
        for lat, smooth, feat in zip(self.lat[2::-1], self.smooth, (x16, x8, x4)):
            p = smooth(lat(feat) + F.interpolate(p, size=feat.shape[-2:], mode="nearest"))
        h = self.head(p)
        return self.out_heat(h), self.out_cls(h), self.out_box(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inference outputs (the ONNX graph): peak-only face probability, class probabilities, box."""
        heat, cls, box = self.raw(x)
        heat = torch.sigmoid(heat)
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).to(heat.dtype)
        return peaks, torch.softmax(cls, 1), box


# -- data -------------------------------------------------------------------------------------------
@dataclass
class Cached:
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray  # int ids into LABELS


def cache_images(images: list[VocImage]) -> list[Cached]:
    out = []
    for im in images:
        out.append(Cached(read_image(im.path), im.boxes.astype(np.float32),
                          np.array([LABELS.index(lbl) for lbl in im.labels], np.int64)))
    return out


def closeup_cache(root: str | Path, per_class: int) -> list[Cached]:
    """Close-up photos labelled with one face each: the class from the folder name, the box from
    YuNet (calibrated to the annotation style; the top-scoring face). Photos where YuNet finds no
    face are skipped. Files of the false-face benchmark (`maskwatch.evaluation.closeups`) are never used."""
    from ..calibration import CalibratedDetector
    from ..detectors import create_detector
    from ..evaluation.closeups import BENCHMARK_PER_CLASS, closeup_files
    from ..labels import canonical_label

    det = CalibratedDetector(create_detector("yunet", min_side=320, score_threshold=0.5))
    out = []
    for path, folder in closeup_files(root, per_class, skip=BENCHMARK_PER_CLASS):
        label = canonical_label(folder)
        if label is None:
            continue
        image = read_image(path)
        faces = det.detect(image)
        if len(faces):
            box = faces.xyxy[int(faces.det_score.argmax())][None].astype(np.float32)
            out.append(Cached(image, box, np.array([LABELS.index(label)], np.int64)))
    return out


PAD_RGB = tuple(int(round(m * 255)) for m in MEAN)


def augment(item: Cached, size: int, rng: np.random.Generator, scale_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rescale + crop (biased to contain faces) + flip + colour + blur; returns a ``size`` square."""
    img, boxes, labels = item.image, item.boxes, item.labels
    s = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    boxes = boxes * np.float32([nw / w, nh / h, nw / w, nh / h])
    if len(boxes) and rng.uniform() < 0.7:
        b = boxes[rng.integers(len(boxes))]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x0 = int(cx - rng.uniform(0.1, 0.9) * size)
        y0 = int(cy - rng.uniform(0.1, 0.9) * size)
    else:
        x0 = int(rng.integers(min(0, nw - size), max(0, nw - size) + 1))
        y0 = int(rng.integers(min(0, nh - size), max(0, nh - size) + 1))
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = PAD_RGB
    sx1, sy1, sx2, sy2 = max(x0, 0), max(y0, 0), min(x0 + size, nw), min(y0 + size, nh)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - y0:sy2 - y0, sx1 - x0:sx2 - x0] = img[sy1:sy2, sx1:sx2]
    boxes = boxes - np.float32([x0, y0, x0, y0])
    if len(boxes):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        clipped = boxes.clip(0, size)
        carea = (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0)
        keep = (carea >= 0.5 * area) & ((clipped[:, 2:] - clipped[:, :2]).min(1) >= 2)
        boxes, labels = clipped[keep], labels[keep]
    if rng.uniform() < 0.5:
        canvas = canvas[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
    canvas = _colour(np.ascontiguousarray(canvas), rng)
    return canvas, boxes.astype(np.float32), labels


def _colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # contrast, brightness
    if rng.uniform() < 0.5:  # saturation
        gray = x.mean(2, keepdims=True)
        x = gray + (x - gray) * rng.uniform(0.5, 1.5)
    if rng.uniform() < 0.2:
        k = int(rng.choice([3, 5]))
        x = cv2.GaussianBlur(x, (k, k), 0)
    if rng.uniform() < 0.1:
        x[:] = x.mean(2, keepdims=True)
    return x.clip(0, 255).astype(np.uint8)


def targets(boxes: np.ndarray, labels: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """CenterNet targets at stride 4: Gaussian heatmap, centre cells, offsets, log sizes, labels."""
    g = size // STRIDE
    heat = np.zeros((g, g), np.float32)
    ind = np.zeros(MAX_OBJECTS, np.int64)
    reg = np.zeros((MAX_OBJECTS, 4), np.float32)
    lab = np.zeros(MAX_OBJECTS, np.int64)
    mask = np.zeros(MAX_OBJECTS, np.float32)
    ys, xs = np.mgrid[0:g, 0:g].astype(np.float32)
    order = np.argsort(-((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))) if len(boxes) else []
    for k, i in enumerate(order[:MAX_OBJECTS]):
        x1, y1, x2, y2 = boxes[i] / STRIDE
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(int(cx), g - 1), min(int(cy), g - 1)
        sx, sy = max(0.5, (x2 - x1) / 6), max(0.5, (y2 - y1) / 6)
        r = int(3 * max(sx, sy)) + 1
        xa, xb, ya, yb = max(0, ix - r), min(g, ix + r + 1), max(0, iy - r), min(g, iy + r + 1)
        gauss = np.exp(-((xs[ya:yb, xa:xb] - ix) ** 2 / (2 * sx * sx) + (ys[ya:yb, xa:xb] - iy) ** 2 / (2 * sy * sy)))
        heat[ya:yb, xa:xb] = np.maximum(heat[ya:yb, xa:xb], gauss)
        ind[k] = iy * g + ix
        reg[k] = (cx - ix, cy - iy, math.log(max(x2 - x1, 1e-3)), math.log(max(y2 - y1, 1e-3)))
        lab[k] = labels[i]
        mask[k] = 1
    return {"heat": heat[None], "ind": ind, "reg": reg, "label": lab, "mask": mask}


def make_batch(items: list[Cached], size: int, rng: np.random.Generator, cfg: DetectorConfig) -> dict[str, torch.Tensor]:
    imgs, tg = [], []
    for it in items:
        img, boxes, labels = augment(it, size, rng, cfg.scale_range)
        imgs.append(img)
        tg.append(targets(boxes, labels, size))
    x = torch.from_numpy(np.concatenate([DM.ops.normalize(i[None], MEAN, STD) for i in imgs]))
    batch = {k: torch.from_numpy(np.stack([t[k] for t in tg])) for k in tg[0]}
    batch["input"] = x
    return batch


# -- loss -------------------------------------------------------------------------------------------
def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg
    n = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / n.clamp(min=1)


def _gather(feat: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    b, c = feat.shape[:2]
    return feat.view(b, c, -1).gather(2, ind[:, None, :].expand(b, c, ind.shape[1])).permute(0, 2, 1)


def _cell_boxes(reg: torch.Tensor) -> torch.Tensor:
    """``(dx, dy, log w, log h)`` in stride units -> ``x1, y1, x2, y2`` relative to the centre cell."""
    half = torch.exp(reg[..., 2:].clamp(max=8)) / 2
    return torch.cat([reg[..., :2] - half, reg[..., :2] + half], -1)


def detection_loss(out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor],
                   class_weights: torch.Tensor, box_loss: str = "l1") -> tuple[torch.Tensor, dict[str, float]]:
    """CenterNet loss: focal heatmap + box (L1, optionally + GIoU) + class cross-entropy at the centres."""
    heat, cls, box = out
    l_heat = focal_loss(heat, batch["heat"])
    mask = batch["mask"]
    n = mask.sum().clamp(min=1)
    pred = _gather(box, batch["ind"])
    l_box = (F.l1_loss(pred, batch["reg"], reduction="none").sum(2) * mask).sum() / n
    if box_loss == "l1+giou":
        from torchvision.ops import generalized_box_iou_loss

        on = mask.bool()
        l_box = l_box + generalized_box_iou_loss(_cell_boxes(pred[on]), _cell_boxes(batch["reg"][on]),
                                                 reduction="sum") / n
    elif box_loss != "l1":
        raise ValueError(f"box_loss must be 'l1' or 'l1+giou', not {box_loss!r}")
    logits = _gather(cls, batch["ind"]).reshape(-1, cls.shape[1])
    ce = F.cross_entropy(logits, batch["label"].reshape(-1), weight=class_weights, reduction="none")
    l_cls = (ce * mask.reshape(-1)).sum() / n
    loss = l_heat + l_box + l_cls
    return loss, {"loss": loss.item(), "heat": l_heat.item(), "box": l_box.item(), "cls": l_cls.item()}


# -- evaluation -------------------------------------------------------------------------------------
class TorchDetector:
    """The torch model behind the same pre/post-processing as `MaskwatchDetector` (for validation)."""

    def __init__(self, model: CenterFaceNet, scale: float, score_threshold: float = 0.05, nms_threshold: float = 0.5):
        self.model, self.scale = model, scale
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold

    @torch.no_grad()
    def detect(self, image: np.ndarray, source: str | None = None) -> Faces:
        h, w = image.shape[:2]
        x, scale = DM.preprocess(image, self.scale, MEAN, STD)
        heat, cls, box = (t.numpy() for t in self.model(torch.from_numpy(x)))
        xyxy, scores, probs = DM.decode(heat, cls, box, STRIDE, self.score_threshold, self.nms_threshold)
        xyxy = DM.ops.clip_boxes(xyxy / np.float32(scale), w, h)
        keep = DM.ops.box_area(xyxy) > 0
        return Faces(xyxy=xyxy[keep], det_score=scores[keep], probs=probs[keep], image_size=(w, h), source=source)


def evaluate(model: CenterFaceNet, images: list[VocImage], scale: float) -> dict[str, Any]:
    from ..evaluation import detection_metrics, run_pipeline

    model.eval()
    m = detection_metrics(run_pipeline(TorchDetector(model, scale), images))
    return {k: m.get(k) for k in ("mAP50", "face_AP50", "face_recall", "AP50")}


# -- training -------------------------------------------------------------------------------------
def split_images(cfg: DetectorConfig) -> tuple[list[VocImage], list[VocImage]]:
    """(train, val) images: val = the evaluation split, train = every other annotated image."""
    from ..evaluation import load_split
    from ..voc import load_voc

    desc, val = load_split(cfg.data, cfg.split)
    if desc == "all":  # nothing held out: validation numbers are training numbers
        log.warning("%s: split 'all' holds no images out; validating on the training images", cfg.data)
        train = [im for im in val if len(im.boxes)]
    else:
        val_paths = {im.path for im in val}
        train = [im for im in load_voc(cfg.data) if im.path not in val_paths and len(im.boxes)]
    if cfg.max_images:
        train, val = train[: cfg.max_images], val[: cfg.max_images]
    return train, val


def _lr_at(step: int, total: int, cfg: DetectorConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def spec_for(cfg: DetectorConfig, scale: float | None = None) -> ModelSpec:
    return ModelSpec(kind="detector", labels=LABELS, input_size=max(cfg.crop_sizes), mean=MEAN, std=STD,
                     crop_margin=0.0, arch="mobilenet_v2-centernet", version=cfg.version,
                     extra={"stride": STRIDE, "scale": scale or cfg.val_scale, "channels": cfg.channels})


def fit(cfg: DetectorConfig, progress: bool = True) -> Path:
    """Train; returns the run folder (config.json, history.json, last.pt, best.pt, train.log lines via logging)."""
    from tqdm import tqdm

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    train_imgs, val_imgs = split_images(cfg)
    (out / "split.json").write_text(json.dumps({"train": [str(i.path) for i in train_imgs],
                                                "val": [str(i.path) for i in val_imgs]}))
    log.info("detector training: %d train / %d val images", len(train_imgs), len(val_imgs))
    cache = cache_images(train_imgs)
    if cfg.closeups and cfg.closeups_per_class:
        extra = closeup_cache(cfg.closeups, cfg.closeups_per_class)
        log.info("+ %d close-up photos from %s", len(extra), cfg.closeups)
        cache += extra
    counts = np.bincount(np.concatenate([c.labels for c in cache]), minlength=len(LABELS)).astype(np.float64)
    class_weights = torch.tensor((counts.sum() / np.maximum(counts, 1) / len(LABELS)) ** cfg.class_weight_power,
                                 dtype=torch.float32)

    model = CenterFaceNet(channels=cfg.channels, pretrained=cfg.pretrained)
    if cfg.init:
        model.load_state_dict(torch.load(cfg.init, map_location="cpu", weights_only=False)["model"])
    if cfg.freeze_stem:
        model.freeze_stem()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    steps = cfg.steps_per_epoch or max(1, len(cache) // cfg.batch_size)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
    total = steps * cfg.epochs
    start_epoch, best, history, bad = 0, -1.0, [], 0
    if cfg.resume:
        ck = torch.load(cfg.resume, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, best, history, bad = ck["epoch"], ck["best"], ck["history"], ck.get("bad", 0)
        log.info("resumed from %s at epoch %d (best mAP50 %.4f)", cfg.resume, start_epoch, best)
    if bad >= cfg.patience:  # the run had stopped early: nothing left to do
        log.info("early stop already reached (%d epochs without a better validation mAP50)", bad)
    rng = np.random.default_rng(cfg.seed + start_epoch)
    for epoch in range(start_epoch, cfg.epochs if bad < cfg.patience else start_epoch):
        model.train()
        t0 = time.time()
        sums: dict[str, float] = {}
        order = rng.permutation(len(cache))
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, unit="batch")
        for step in bar:
            size = int(rng.choice(cfg.crop_sizes))
            idx = [order[(step * cfg.batch_size + k) % len(order)] for k in range(cfg.batch_size)]
            batch = make_batch([cache[i] for i in idx], size, rng, cfg)
            for group in opt.param_groups:
                group["lr"] = _lr_at(epoch * steps + step, total, cfg)
            loss, parts = detection_loss(model.raw(batch["input"]), batch, class_weights, cfg.box_loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{parts['loss']:.3f}")
            if not progress and (step + 1) % 10 == 0:
                log.info("epoch %d step %d/%d: loss %.3f (%.1f s/step)", epoch + 1, step + 1, steps,
                         sums["loss"] / (step + 1), (time.time() - t0) / (step + 1))
        row = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}, "seconds": round(time.time() - t0, 1)}
        if val_imgs:
            row.update(evaluate(model, val_imgs, cfg.val_scale))
        history.append(row)
        score = row.get("mAP50") or 0.0
        improved = score > best
        if improved:
            best, bad = score, 0
        else:
            bad += 1
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "best": best, "bad": bad,
              "history": history, "config": asdict(cfg)}
        torch.save(ck, out / "last.pt")
        if improved:
            torch.save(ck, out / "best.pt")
        (out / "history.json").write_text(json.dumps(history, indent=1))
        log.info("epoch %d: %s", epoch + 1, json.dumps(row))
        if bad >= cfg.patience:
            log.info("early stop: no better validation mAP50 for %d epochs", bad)
            break
    if not (out / "best.pt").exists():
        torch.save(ck, out / "best.pt")
    return out


def load_checkpoint(path: str | Path) -> tuple[CenterFaceNet, DetectorConfig, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    raw = dict(ck["config"])
    for key in ("crop_sizes", "scale_range"):
        raw[key] = tuple(raw[key])
    cfg = DetectorConfig(**raw)
    model = CenterFaceNet(channels=cfg.channels)
    model.load_state_dict(ck["model"])
    return model.eval(), cfg, ck


def export(checkpoint: str | Path, path: str | Path, scale: float | None = None, opset: int = 17) -> dict[str, Any]:
    """Export ``checkpoint`` to ONNX (dynamic height/width) with its spec; check it against PyTorch."""
    from ..classifier import onnx_session
    from .export import _embed_metadata

    model, cfg, _ = load_checkpoint(checkpoint)
    spec = spec_for(cfg, scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 320, 320)
    dyn = {"input": {2: "height", 3: "width"}, "heat": {2: "h", 3: "w"}, "cls": {2: "h", 3: "w"}, "box": {2: "h", 3: "w"}}
    torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["heat", "cls", "box"],
                      dynamic_axes=dyn, opset_version=opset, dynamo=False)
    _embed_metadata(path, spec)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 256, 352)).astype(np.float32))
    with torch.no_grad():
        ref = [t.numpy() for t in model(x)]
    sess = onnx_session(path)
    got = sess.run(["heat", "cls", "box"], {"input": x.numpy()})
    # cls / box must agree; a face-centre peak may flip where neighbours tie to float precision
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref[1:], got[1:]))
    both = (ref[0] > 0) & (got[0] > 0)
    diff = max(diff, float(np.abs(ref[0] - got[0])[both].max()) if both.any() else 0.0)
    flipped = float(((ref[0] > 0) != (got[0] > 0)).mean())
    if diff > 1e-3 or flipped > 0.01:
        raise RuntimeError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.2e} "
                           f"({flipped:.1%} of face-centre peaks differ)")
    return {"path": str(path), "max_abs_diff": diff, "peaks_differing": flipped, "size_bytes": path.stat().st_size,
            "spec": json.loads(spec.to_json())}


def quantize(onnx_path: str | Path, out_path: str | Path, images: list[VocImage], scale: float, n: int = 32) -> dict[str, Any]:
    """Static int8 quantisation (QDQ, per-channel weights) calibrated on ``n`` training images."""
    from onnxruntime.quantization import CalibrationDataReader

    from ..classifier import onnx_session
    from .export import quantize_qdq

    spec = ModelSpec.from_metadata(onnx_session(onnx_path).get_modelmeta().custom_metadata_map)
    spec = ModelSpec(**{**asdict(spec), "extra": {**spec.extra, "precision": "int8"}})

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(images[:n])

        def get_next(self):
            im = next(self._it, None)
            return None if im is None else {"input": DM.preprocess(read_image(im.path), scale, MEAN, STD)[0]}

    return quantize_qdq(onnx_path, out_path, Reader(), spec)
