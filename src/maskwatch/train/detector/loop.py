"""Detector training in the shape of torchvision's references: `train_one_epoch`, `evaluate`, `fit`.

``fit(cfg)`` trains on the *training* side of the default classifier's group split (so the
classifier never sees detection-validation faces either), validates mAP@0.5 with the evaluation
code each epoch, keeps ``best.pt`` by validation mAP@0.5, stops early, and resumes from ``last.pt``.
Checkpoints (`maskwatch.train.checkpoint`) hold the model, optimiser, epoch, early-stopping state,
history, config and the model's spec.

CPU-friendly: decoded images are cached in memory once, training uses random crops of a moderate
size (multi-scale: a crop side per batch) of randomly rescaled images, so faces appear at many sizes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...datasets import SourceLayout, VocImage
from ...detectors.maskwatch import CenterNetDetector
from ...faces import Faces
from ...labels import LABELS
from ..checkpoint import start_run, EarlyStopping, checkpoint_state, load_state, save_checkpoint
from ..detector_config import DetectorConfig
from ..schedule import validation_metrics, warmup_cosine
from .data import Cached, cache_images, closeup_cache, make_batch, split_images
from .loss import detection_loss
from .model import MEAN, STD, STRIDE, CenterFaceNet, spec_for

log = logging.getLogger(__name__)


class TorchDetector(CenterNetDetector):
    """The torch model behind the same pre/post-processing as `MaskwatchDetector` (for validation)."""

    def __init__(self, model: CenterFaceNet, scale: float, score_threshold: float = 0.05, nms_threshold: float = 0.5):
        from ...spec import ModelSpec

        self.model = model
        spec = ModelSpec(kind="detector", labels=LABELS, mean=MEAN, std=STD, extra={"stride": STRIDE})
        super().__init__(spec, scale, score_threshold, nms_threshold)

    @torch.no_grad()
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        heat, cls, box = (t.numpy() for t in self.model(torch.from_numpy(x)))
        return heat, cls, box

    def detect(self, image: np.ndarray, source: str | None = None) -> Faces:
        return super().detect(image).with_meta(source=source)


def evaluate(model: CenterFaceNet, images: list[VocImage], scale: float) -> dict[str, Any]:
    """Validation metrics (mAP@0.5, face AP and recall, per-class AP) of the model in eval mode."""
    model.eval()
    return validation_metrics(TorchDetector(model, scale), images)


def _lr_at(step: int, total: int, cfg: DetectorConfig) -> float:
    return warmup_cosine(step, total, cfg.lr, cfg.warmup_steps)


def fit(cfg: DetectorConfig, progress: bool = True, layout: SourceLayout | None = None) -> Path:
    """Train; returns the run folder (config.json, split.json, history.json, last.pt, best.pt)."""
    out = start_run(cfg.output, asdict(cfg), cfg.threads, cfg.seed)
    train_imgs, val_imgs = split_images(cfg, layout)
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
        model.load_state_dict(load_state(cfg.init)["model"])
    if cfg.freeze_stem:
        model.freeze_stem()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    steps = cfg.steps_per_epoch or max(1, len(cache) // cfg.batch_size)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
    start_epoch, history = 0, []
    stopper = EarlyStopping(cfg.patience, mode="max", best=-1.0)
    ck: dict[str, Any] = {}
    if cfg.resume:
        ck = load_state(cfg.resume)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, history = ck["epoch"], ck["history"]
        stopper = EarlyStopping(cfg.patience, mode="max", best=ck["best"], stale=ck.get("bad", 0))
        log.info("resumed from %s at epoch %d (best mAP50 %.4f)", cfg.resume, start_epoch, stopper.best)
    if stopper.stopped:  # the run had stopped early: nothing left to do
        log.info("early stop already reached (%d epochs without a better validation mAP50)", stopper.stale)
    rng = np.random.default_rng(cfg.seed + start_epoch)
    spec = spec_for(cfg)
    for epoch in range(start_epoch, start_epoch if stopper.stopped else cfg.epochs):
        t0 = time.time()
        losses = train_one_epoch(model, opt, cache, class_weights, cfg, rng, epoch, steps, progress)
        row = {"epoch": epoch + 1, **losses, "seconds": round(time.time() - t0, 1)}
        if val_imgs:
            row.update(evaluate(model, val_imgs, cfg.val_scale))
        history.append(row)
        improved, stop = stopper.step(row.get("mAP50") or 0.0)
        ck = checkpoint_state(model, opt, epoch + 1, asdict(cfg), spec, history, best=stopper.best, bad=stopper.stale)
        save_checkpoint(out / "last.pt", ck)
        if improved:
            save_checkpoint(out / "best.pt", ck)
        (out / "history.json").write_text(json.dumps(history, indent=1))
        log.info("epoch %d: %s", epoch + 1, json.dumps(row))
        if stop:
            log.info("early stop: no better validation mAP50 for %d epochs", stopper.stale)
            break
    if not (out / "best.pt").exists():
        save_checkpoint(out / "best.pt", ck)
    return out


def train_one_epoch(model: CenterFaceNet, opt: torch.optim.Optimizer, cache: list[Cached], class_weights: torch.Tensor,
                    cfg: DetectorConfig, rng: np.random.Generator, epoch: int, steps: int,
                    progress: bool = True) -> dict[str, float]:
    """One epoch of ``steps`` batches (multi-scale crops, warm-up + cosine learning rate); mean losses."""
    from tqdm import tqdm

    model.train()
    t0 = time.time()
    total = steps * cfg.epochs
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
    return {k: v / steps for k, v in sums.items()}
