"""Fine-tune the RFB face detector into maskwatch's single-pass face + mask detector.

``fit(cfg)`` = cache the photos, then per epoch `train_one_epoch` and `evaluate` (validation
mAP@0.5 on fmd's evaluation split and on ilc's pinned group split), saving ``last.pt`` every epoch
and ``best.pt`` on the best mean validation mAP; re-running continues from ``last.pt``. The GPU is
used when there is one. Training batches come from `BatchStream`: each from its own seed, made by
``workers`` processes beside the training step (on a GPU the step is far faster than one CPU core
can augment).
"""

from __future__ import annotations

import json
import logging

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ...datasets import VocImage, duplicate_groups, hash_split, load_voc
from ...detectors import rfb
from ...faces import Faces
from ...labels import LABELS
from ...spec import ModelSpec
from ..checkpoint import checkpoint_state, load_state, save_checkpoint, start_run
from ..engine import pick_device
from ..schedule import validation_metrics, warmup_cosine
from .config import RFBConfig
from .data import Augmenter, Sample, load_samples, match
from .loss import multibox_loss
from .model import RFBDetector, from_onnx, init_from_upstream

log = logging.getLogger("maskwatch.train.rfb")


def split_images(cfg: RFBConfig) -> dict[str, tuple[list[VocImage], list[VocImage]]]:
    """``{dataset: (train, val)}`` for fmd, ilc and each ``data`` folder (named after it)."""
    out = {}
    if cfg.fmd:
        images = [im for im in load_voc(cfg.fmd)]
        wanted = set(cfg.fmd_val)
        out["fmd"] = ([im for im in images if im.path.name not in wanted and len(im.boxes)],
                      [im for im in images if im.path.name in wanted])
    folders = ([("ilc", cfg.ilc)] if cfg.ilc else []) + [(Path(d).name or str(d), d) for d in cfg.data]
    for name, folder in folders:
        tr, va = hash_split(load_voc(folder), duplicate_groups(folder), cfg.val_fraction)
        while name in out:  # two folders of one name
            name += "'"
        out[name] = ([im for im in tr if len(im.boxes)], va)
    if cfg.max_images:
        out = {k: (tr[: cfg.max_images], va[: max(1, cfg.max_images // 2)]) for k, (tr, va) in out.items()}
    return out


def spec_for(cfg: RFBConfig) -> ModelSpec:
    return ModelSpec(kind="detector", labels=LABELS, input_size=cfg.size, mean=rfb.MEAN, std=rfb.STD,
                     crop_margin=0.0, arch=rfb.ARCH, version=cfg.version,
                     extra={"min_side": cfg.min_side, "scale": 1.0, "background": True,
                            "strides": list(rfb.STRIDES), "min_boxes": [list(b) for b in rfb.MIN_BOXES],
                            "center_variance": rfb.CENTER_VARIANCE, "size_variance": rfb.SIZE_VARIANCE})


class TorchRFB(rfb.RFBDecoder):
    """The torch model behind the same pre/post-processing as `RFBMaskDetector` (for validation)."""

    def __init__(self, model: RFBDetector, spec: ModelSpec, score_threshold: float = 0.05):
        self.model = model
        super().__init__(spec, score_threshold, min_side=int(spec.extra.get("min_side", 0)))

    @torch.no_grad()
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dev = next(self.model.parameters()).device
        logits, locs = self.model(torch.from_numpy(x).to(dev))
        return torch.softmax(logits, 2).cpu().numpy(), locs.cpu().numpy()

    def detect(self, image: np.ndarray, source: str | None = None) -> Faces:
        return super().detect(image).with_meta(source=source)


def evaluate(model: torch.nn.Module, images: list[VocImage], spec: ModelSpec, recipe: "Recipe | None" = None
             ) -> dict[str, Any]:
    """Validation metrics (mAP@0.5, face AP and recall, per-class AP) of the model in eval mode."""
    model.eval()
    return validation_metrics((recipe or RFB).decoder(model, spec), images)


def make_batch(aug: Augmenter, size: int, n: int, rng: np.random.Generator, assign: str = "iou"
               ) -> dict[str, torch.Tensor]:
    imgs, labels, locs = [], [], []
    for _ in range(n):
        img, boxes, lab = aug(size, rng)
        t_lab, t_loc = match(boxes, lab, size, size, assign=assign)
        imgs.append(img)
        labels.append(t_lab)
        locs.append(t_loc)
    return {"input": torch.from_numpy(rfb.normalize(np.stack(imgs))), "labels": torch.from_numpy(np.stack(labels)),
            "locs": torch.from_numpy(np.stack(locs))}


class Recipe:
    """What the loop needs of an architecture: its model, batches, loss, validation decoder and spec.
    `RFB` is this module's; `maskwatch.train.yunet.loop.YUNET` the YuNet candidate's."""

    arch = rfb.ARCH

    def model(self, cfg: RFBConfig, aug: Augmenter) -> torch.nn.Module:
        if cfg.init:  # BatchNorm statistics measured on four batches of training inputs
            sample = make_batch(aug, cfg.size, 4 * cfg.batch_size, np.random.default_rng(cfg.seed))["input"]
            return from_onnx(cfg.init, sample)
        return init_from_upstream(cfg.pretrained, LABELS) if cfg.pretrained else RFBDetector(1 + len(LABELS))

    def empty(self, spec: ModelSpec) -> torch.nn.Module:
        return RFBDetector(1 + len(spec.labels))

    def batch(self, aug: Augmenter, cfg: RFBConfig, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return make_batch(aug, cfg.size, cfg.batch_size, rng, cfg.assign)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], class_weights: torch.Tensor
             ) -> dict[str, torch.Tensor]:
        dev = next(model.parameters()).device
        logits, locs = model(batch["input"].to(dev))
        return multibox_loss(logits, locs, batch["labels"].to(dev), batch["locs"].to(dev), class_weights.to(dev))

    def decoder(self, model: torch.nn.Module, spec: ModelSpec) -> Any:
        return TorchRFB(model, spec)

    def spec(self, cfg: RFBConfig) -> ModelSpec:
        return spec_for(cfg)


RFB = Recipe()


class BatchStream(torch.utils.data.IterableDataset):
    """Training batches for the global steps ``start .. stop - 1``. Batch ``k`` is made from its own
    seed ``(seed, k)``, so the sequence is the same with any number of workers and when a run resumes.
    A `torch.utils.data.DataLoader` over it hands the batches back in step order."""

    def __init__(self, make: Callable[[np.random.Generator], dict[str, torch.Tensor]], seed: int, start: int, stop: int):
        self.make, self.seed, self.start, self.stop = make, seed, start, stop

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, n = (info.id, info.num_workers) if info else (0, 1)
        for k in range(self.start + wid, self.stop, n):
            yield self.make(np.random.default_rng((self.seed, k)))


def default_workers(device: torch.device, cpus: int | None = None) -> int:
    """Batch-making processes: none on a CPU-only machine, every core but one (at most 16) beside a GPU.
    Measured on 2 CPU cores (batches of 24 at 384 px): the main process makes 3.8 batches/s, one
    worker 2.8, two 6.4, while a training step takes about 2 s, and one worker made training no
    faster (1.8-2.2 s per step either way). A GPU steps this 289k-parameter network far faster than
    one core can augment, so there the workers set the pace."""
    import os

    cpus = cpus or os.cpu_count() or 1
    return 0 if device.type == "cpu" else max(0, min(16, cpus - 1))


def batch_loader(stream: BatchStream, workers: int, device: torch.device) -> torch.utils.data.DataLoader:
    """The stream's batches, made by ``workers`` forked processes."""
    import multiprocessing as mp

    kwargs: dict[str, Any] = {}
    if workers and "fork" not in mp.get_all_start_methods():
        log.warning("no fork on this platform: batches are made in the main process")
        workers = 0
    if workers:
        import cv2

        # the workers are the parallelism: OpenCV single-threaded, set before the fork (in this
        # process too), because cv2.setNumThreads inside a forked worker hung tearing down the pool
        cv2.setNumThreads(1)
        # fork shares the cached photos instead of pickling them to every worker
        # and a worker that stops answering raises instead of stalling the run
        kwargs = {"prefetch_factor": 4, "timeout": 600, "multiprocessing_context": "fork"}
    return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                       pin_memory=device.type == "cuda", **kwargs)


def lr_at(step: int, total: int, cfg: RFBConfig) -> float:
    return warmup_cosine(step, total, cfg.lr, cfg.warmup_steps)


def train_one_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: Iterator[dict[str, torch.Tensor]],
                    cfg: RFBConfig, epoch: int, class_weights: torch.Tensor, progress: bool = True,
                    recipe: "Recipe | None" = None) -> dict[str, float]:
    """One epoch of ``cfg.steps_per_epoch`` batches taken from ``batches`` (a `batch_loader`)."""
    from tqdm import tqdm

    recipe = recipe or RFB
    model.train()
    sums: dict[str, float] = {}
    total = cfg.steps_per_epoch * cfg.epochs
    bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, unit="batch")
    for step in bar:
        batch = next(batches)
        for group in opt.param_groups:
            group["lr"] = lr_at(epoch * cfg.steps_per_epoch + step, total, cfg)
        parts = recipe.loss(model, batch, class_weights)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        bar.set_postfix(loss=f"{float(parts['loss'].detach()):.3f}")
        if not progress and (step + 1) % 20 == 0:
            log.info("epoch %d step %d/%d: loss %.3f", epoch + 1, step + 1, cfg.steps_per_epoch, sums["loss"] / (step + 1))
    return {k: v / cfg.steps_per_epoch for k, v in sums.items()}


def load_checkpoint(path: str | Path, recipe: "Recipe | None" = None) -> tuple[torch.nn.Module, ModelSpec, dict]:
    """``(model in eval mode, its spec, the checkpoint dict)``."""
    ck = load_state(path)
    spec = ck["spec"]
    spec = ModelSpec(**spec) if isinstance(spec, dict) else ModelSpec.from_json(spec)
    model = (recipe or RFB).empty(spec)
    model.load_state_dict(ck["model"])
    return model.eval(), spec, ck


def fit(cfg: RFBConfig, progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
        recipe: Recipe = RFB) -> Path:
    """Train; returns the run folder (config.json, split.json, history.json, last.pt, best.pt)."""
    out = start_run(cfg.output, asdict(cfg), cfg.threads, cfg.seed)
    splits = split_images(cfg)
    (out / "split.json").write_text(json.dumps({k: {"train": [i.path.name for i in tr], "val": [i.path.name for i in va]}
                                                for k, (tr, va) in splits.items()}, indent=0))
    t0 = time.time()
    samples: list[Sample] = []
    for name, (train, _) in splits.items():
        style = tuple(cfg.ilc_style) if name == "ilc" and cfg.ilc_style else None
        samples += load_samples(train, name, style)
    if not samples:
        raise ValueError(f"no training photos with faces in {', '.join(splits) or 'the data given'} "
                         "(Pascal VOC annotations with with_mask / without_mask / mask_worn_incorrectly boxes)")
    log.info("RFB training: %s; %d photos cached in %.0f s", {k: (len(a), len(b)) for k, (a, b) in splits.items()},
             len(samples), time.time() - t0)
    aug = Augmenter(samples, cfg.augment, cfg.balance_power)
    counts = np.bincount(np.concatenate([s.labels for s in samples]), minlength=1 + len(LABELS)).astype(np.float64)
    cw = np.ones(1 + len(LABELS))
    cw[1:] = (counts[1:].max() / np.maximum(counts[1:], 1)) ** cfg.loss_class_power
    class_weights = torch.tensor(cw, dtype=torch.float32)

    dev = pick_device()
    model = recipe.model(cfg, aug).to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr)
    start, best, history = 0, -1.0, []
    if (out / "last.pt").exists():
        ck = load_state(out / "last.pt", dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, best, history = ck["epoch"], ck["best"], ck["history"]
        log.info("resumed from %s at epoch %d (best %.4f)", out / "last.pt", start, best)
    spec = recipe.spec(cfg)
    workers = default_workers(dev) if cfg.workers < 0 else cfg.workers
    stream = BatchStream(lambda rng: recipe.batch(aug, cfg, rng), cfg.seed,
                         start * cfg.steps_per_epoch, cfg.epochs * cfg.steps_per_epoch)
    batches = iter(batch_loader(stream, workers, dev))
    log.info("training on %s, batches made by %s", dev, f"{workers} worker processes" if workers else "the main process")
    if not history and cfg.eval_every:  # epoch 0: what the face-pretrained network knows before fine-tuning
        history.append({"epoch": 0, **{name: evaluate(model, val, spec, recipe) for name, (_, val) in splits.items() if val}})
        log.info("epoch 0: %s", json.dumps(history[-1]))
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        row: dict[str, Any] = {"epoch": epoch + 1, **train_one_epoch(model, opt, batches, cfg, epoch, class_weights, progress, recipe)}
        row["train_seconds"] = round(time.time() - t0, 1)
        last = epoch + 1 == cfg.epochs
        if (epoch + 1) % cfg.eval_every == 0 or last:
            for name, (_, val) in splits.items():
                if val:
                    row[name] = evaluate(model, val, spec, recipe)
        score = float(np.mean([row[k]["mAP50"] or 0.0 for k in splits if k in row])) if any(k in row for k in splits) else -1.0
        row["score"] = score
        history.append(row)
        improved = score > best
        best = max(best, score)
        ck = checkpoint_state(model, opt, epoch + 1, asdict(cfg), spec, history, best=best, device=str(dev))
        save_checkpoint(out / "last.pt.tmp", ck)
        Path(out / "last.pt.tmp").replace(out / "last.pt")  # a kill mid-save leaves the previous last.pt
        if improved:
            save_checkpoint(out / "best.pt", ck)
        (out / "history.json").write_text(json.dumps(history, indent=1))
        log.info("epoch %d: %s", epoch + 1, json.dumps(row))
        if on_epoch:
            on_epoch(row)
    if not (out / "best.pt").exists() and (out / "last.pt").exists():
        import shutil

        shutil.copy(out / "last.pt", out / "best.pt")
    return out
