"""Classifier training: `TrainConfig` -> `fit()` (two phases, checkpoints, resume, early stop).

Phase 1 trains the new head on a frozen ImageNet backbone, from cached embeddings (one backbone
pass over the data, then every head epoch is instant on a CPU). Phase 2 fine-tunes the top
backbone blocks and the head on augmented crops at a lower learning rate, with early stopping on
validation loss. Every epoch writes ``last.pt`` (model, optimiser, scheduler, epoch, config, spec,
history) and, when validation loss improves, ``best.pt``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..labels import LABELS
from ..spec import ModelSpec
from . import data as D
from .checkpoint import EarlyStopping, checkpoint_state, load_state, save_checkpoint  # noqa: F401  (EarlyStopping: API)
from .augment import CropDataset, eval_transform, train_transform
from .model import build_model, frozen_prefix, set_trainable, train_mode

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Every setting of a classifier run; saved as ``config.json`` in the run folder."""

    data: list[str] = field(default_factory=list)
    recrop: list[str] = field(default_factory=list)  # folder sources whose faces are re-cut by YuNet
    # VOC datasets split by photo as the detector splits them (`maskwatch.datasets.hash_split_samples`),
    # added after the group split of the others, which they leave unchanged
    hash_split: list[str] = field(default_factory=list)
    output: str = "runs/classifier"
    arch: str = "mobilenet_v2"
    head: str = "seed"
    pretrained: str | None = "torchvision"
    input_size: int = 128
    crop_margin: float = 0.2
    canvas: int = 160
    val_fraction: float = 0.2
    seed: int = 0
    head_epochs: int = 8
    epochs: int = 10
    batch_size: int = 64
    lr_head: float = 1e-3
    lr: float = 2e-4
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    patience: int = 3
    samples_per_epoch: int = 0  # 0: one pass over the training split
    # "source": weighted sampling, classes equal and, within a class, sources by sqrt(count) (so a small
    # real-photo source is not drowned by a large one of another style); "sampler": classes equal;
    # "loss": class-weighted loss; "none"
    balance: str = "source"
    workers: int = 1
    max_steps: int = 0  # >0: stop each phase-2 epoch after this many steps (smoke tests)
    cache_dir: str | None = None
    device: str = "auto"
    resume: str | None = None
    version: str = "0"

    def spec(self) -> ModelSpec:
        return ModelSpec(kind="classifier", labels=LABELS, input_size=self.input_size, crop_margin=self.crop_margin,
                         arch=self.arch, version=self.version)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward pass that skips autograd through the frozen leading blocks."""
    k = frozen_prefix(model)
    blocks = list(model.features.children())
    with torch.no_grad():
        for b in blocks[:k]:
            x = b(x)
    for b in blocks[k:]:
        x = b(x)
    return model.head(model.pool(x))


def sample_weights(labels: np.ndarray, sources: np.ndarray, num_classes: int, by_source: bool) -> np.ndarray:
    """Per-sample sampling weights: each class the same total; with ``by_source``, each source of a
    class a share proportional to the square root of its size."""
    w = np.zeros(len(labels), np.float64)
    for c in range(num_classes):
        in_c = labels == c
        if not in_c.any():
            continue
        names, counts = np.unique(sources[in_c], return_counts=True)
        shares = np.sqrt(counts) if by_source else counts.astype(np.float64)
        shares = shares / shares.sum()
        for name, count, share in zip(names, counts, shares):
            w[in_c & (sources == name)] = share / count
    return w / w.sum()


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return w


@dataclass
class Prepared:
    samples: list[D.Sample]
    crops: np.ndarray
    labels: np.ndarray
    train_idx: list[int]
    val_idx: list[int]


def split_samples(cfg: TrainConfig) -> tuple[list[D.Sample], list[int], list[int]]:
    """``(samples, train indices, validation indices)``: the group split of ``data`` and ``recrop``,
    then the ``hash_split`` datasets on the sides the detector puts them."""
    samples = D.scan_sources(cfg.data, cfg.recrop)
    train_idx, val_idx = D.group_split(samples, cfg.val_fraction, cfg.seed)
    for root in cfg.hash_split:
        train, val = D.hash_split_samples(root, cfg.val_fraction)
        n = len(samples)
        samples += train + val
        train_idx += range(n, n + len(train))
        val_idx += range(n + len(train), len(samples))
    return samples, train_idx, val_idx


def prepare(cfg: TrainConfig, progress: bool = True) -> Prepared:
    """Scan and split the sources (`split_samples`), cache crops, and save the split in the run folder."""
    samples, train_idx, val_idx = split_samples(cfg)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else None
    crops, ok = D.build_cache(samples, cfg.canvas, cfg.crop_margin, cfg.input_size, cache_dir, progress)
    train_idx = [i for i in train_idx if ok[i]]
    val_idx = [i for i in val_idx if ok[i]]
    labels = np.array([s.label for s in samples], np.int64)
    return Prepared(samples, crops, labels, train_idx, val_idx)


def save_split(prep: Prepared, out: Path) -> None:
    def rows(idx):
        return [{"path": prep.samples[i].path, "box": prep.samples[i].box, "label": LABELS[prep.samples[i].label],
                 "group": prep.samples[i].group, "source": prep.samples[i].source} for i in idx]

    (out / "split.json").write_text(json.dumps({"train": rows(prep.train_idx), "val": rows(prep.val_idx)}))


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device, desc: str = "eval", progress: bool = True):
    """(labels, probs) over a loader, model in eval mode."""
    model.eval()
    ys, ps = [], []
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
        ps.append(torch.softmax(model(x.to(device)), 1).cpu())
        ys.append(y)
    if not ys:
        return np.zeros(0, np.int64), np.zeros((0, len(LABELS)), np.float32)
    return torch.cat(ys).numpy(), torch.cat(ps).numpy()


def _loss_acc(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    if len(y) == 0:
        return float("nan"), float("nan")
    loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1)).mean())
    return loss, float((p.argmax(1) == y).mean())


def train_head(model, prep: Prepared, cfg: TrainConfig, device, history: list, progress: bool) -> None:
    """Phase 1: the head on cached embeddings of the frozen backbone."""
    spec = cfg.spec()
    tf = eval_transform(cfg.input_size, spec.mean, spec.std)
    model.eval()

    @torch.no_grad()
    def embed(idx):
        ds = CropDataset(prep.crops, prep.labels, idx, tf)
        loader = torch.utils.data.DataLoader(ds, batch_size=128, num_workers=0)
        feats = [model.embed(x.to(device)) for x, _ in tqdm(loader, desc="embedding", leave=False, disable=not progress)]
        return torch.cat(feats) if feats else torch.zeros(0, 1, device=device)

    xt, xv = embed(prep.train_idx), embed(prep.val_idx)
    yt = torch.from_numpy(prep.labels[prep.train_idx]).to(device)
    yv = prep.labels[prep.val_idx]
    w = torch.tensor(class_weights(prep.labels[prep.train_idx], len(LABELS)), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=w if cfg.balance != "none" else None, label_smoothing=cfg.label_smoothing)
    opt = torch.optim.AdamW(model.head.parameters(), lr=cfg.lr_head, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(cfg.head_epochs):
        model.head.train()
        perm = torch.randperm(len(xt), generator=gen).to(device)
        total, correct, seen = 0.0, 0, 0
        for i in range(0, len(perm), cfg.batch_size):
            b = perm[i : i + cfg.batch_size]
            logits = model.head(xt[b])
            loss = loss_fn(logits, yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            correct += int((logits.argmax(1) == yt[b]).sum())
            seen += len(b)
        model.head.eval()
        with torch.no_grad():
            pv = torch.softmax(model.head(xv), 1).cpu().numpy() if len(xv) else np.zeros((0, len(LABELS)))
        vl, va = _loss_acc(yv, pv)
        history.append({"phase": 1, "epoch": epoch + 1, "train_loss": total / max(seen, 1),
                        "train_acc": correct / max(seen, 1), "val_loss": vl, "val_acc": va})
        log.info("head epoch %d: %s", epoch + 1, history[-1])


def _checkpoint(path: Path, model, opt, sched, epoch: int, cfg: TrainConfig, history, best: float) -> None:
    save_checkpoint(path, checkpoint_state(model, opt, epoch, asdict(cfg), cfg.spec(), history, scheduler=sched,
                                           best_val_loss=best))


def fit(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train a classifier; returns the run folder (with ``best.pt``, ``last.pt``, ``history.json``)."""
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    prep = prepare(cfg, progress)
    save_split(prep, out)
    if not prep.train_idx:
        raise ValueError("no training samples after the split")
    spec = cfg.spec()
    model = build_model(cfg.arch, cfg.head, len(LABELS), cfg.pretrained).to(device)
    history: list[dict[str, Any]] = []
    start_epoch, best = 0, float("inf")
    resume = load_state(cfg.resume, device) if cfg.resume else None
    if resume is None:
        set_trainable(model, cfg.arch, 1)
        train_head(model, prep, cfg, device, history, progress)
    params = set_trainable(model, cfg.arch, 2)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        start_epoch, history, best = resume["epoch"], resume["history"], resume["best_val_loss"]
        log.info("resumed from %s at epoch %d", cfg.resume, start_epoch)

    train_labels = prep.labels[prep.train_idx]
    weights = class_weights(train_labels, len(LABELS))
    n_per_epoch = cfg.samples_per_epoch or len(prep.train_idx)
    train_ds = CropDataset(prep.crops, prep.labels, prep.train_idx, train_transform(cfg.input_size, spec.mean, spec.std))
    gen = torch.Generator().manual_seed(cfg.seed + start_epoch)
    if cfg.balance in ("sampler", "source"):
        sources = np.array([prep.samples[i].source for i in prep.train_idx])
        w_samples = sample_weights(train_labels, sources, len(LABELS), by_source=cfg.balance == "source")
        sampler = torch.utils.data.WeightedRandomSampler(w_samples, n_per_epoch, generator=gen)
    else:
        sampler = torch.utils.data.RandomSampler(train_ds, num_samples=n_per_epoch, generator=gen)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler,
                                         num_workers=cfg.workers, persistent_workers=cfg.workers > 0, drop_last=False)
    val_loader = torch.utils.data.DataLoader(
        CropDataset(prep.crops, prep.labels, prep.val_idx, eval_transform(cfg.input_size, spec.mean, spec.std)),
        batch_size=128)
    w = torch.tensor(weights, dtype=torch.float32, device=device) if cfg.balance == "loss" else None
    loss_fn = nn.CrossEntropyLoss(weight=w, label_smoothing=cfg.label_smoothing)
    stopper = EarlyStopping(cfg.patience, best)
    for epoch in range(start_epoch, cfg.epochs):
        train_mode(model)
        t0, total, correct, seen = time.time(), 0.0, 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, unit="batch")
        for step, (x, y) in enumerate(bar):
            x, y = x.to(device), y.to(device)
            logits = forward(model, x)
            loss = loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{total / seen:.3f}", acc=f"{correct / seen:.3f}")
            if cfg.max_steps and step + 1 >= cfg.max_steps:
                break
        sched.step()
        yv, pv = predict(model, val_loader, device, progress=progress)
        vl, va = _loss_acc(yv, pv)
        history.append({"phase": 2, "epoch": epoch + 1, "train_loss": total / max(seen, 1),
                        "train_acc": correct / max(seen, 1), "val_loss": vl, "val_acc": va,
                        "seconds": round(time.time() - t0, 1)})
        log.info("epoch %d: %s", epoch + 1, history[-1])
        improved, stop = stopper.step(vl)
        _checkpoint(out / "last.pt", model, opt, sched, epoch + 1, cfg, history, stopper.best)
        if improved or not (out / "best.pt").exists():
            _checkpoint(out / "best.pt", model, opt, sched, epoch + 1, cfg, history, stopper.best)
        (out / "history.json").write_text(json.dumps(history, indent=1))
        if stop:
            log.info("early stop: validation loss has not improved for %d epochs", stopper.stale)
            break
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if not (out / "best.pt").exists():  # epochs == 0: head-only model
        _checkpoint(out / "best.pt", model, opt, sched, 0, cfg, history, best)
    return out


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """(model in eval mode, spec, checkpoint dict) from a ``.pt`` checkpoint."""
    ckpt = load_state(path, device)
    cfg = ckpt["config"]
    model = build_model(cfg["arch"], cfg["head"], len(LABELS), pretrained=None)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ModelSpec.from_json(ckpt["spec"]), ckpt
