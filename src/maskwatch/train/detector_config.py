"""Settings of a detector training run, torch-free so that the CLI can build its parser without
importing torch (inference installs do not have it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DetectorConfig:
    data: str = ""
    output: str = "runs/detector"
    pretrained: str | None = None  # ImageNet mobilenet_v2 state dict ('torchvision' downloads it)
    split: str = "val"  # evaluation split (maskwatch.datasets.resolve_split); training uses the rest
    crop_sizes: tuple[int, ...] = (320, 384, 448)
    scale_range: tuple[float, float] = (0.6, 2.2)
    val_scale: float = 1.5
    channels: int = 64
    class_weight_power: float = 0.5  # class weights (n / n_c) ** power: 0.5 sqrt-inverse, 1 inverse frequency
    box_loss: str = "l1"  # "l1": L1 on centre offset + log size; "l1+giou": plus GIoU of the decoded boxes
    freeze_stem: bool = True  # keep the stride-2/4 trunk (ImageNet) fixed: a third less CPU per step
    epochs: int = 40
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    patience: int = 8
    max_steps: int = 0  # >0: at most this many steps per epoch (smoke tests)
    max_images: int = 0  # >0: use only this many training / validation images (smoke tests)
    steps_per_epoch: int = 0  # 0: one pass over the training images
    seed: int = 0
    threads: int = 0
    resume: str | None = None
    init: str | None = None  # start from this checkpoint's weights (fine-tuning; a new optimiser and schedule)
    closeups: str | None = None  # also train on close-up photos: a crops/<source>/<class>/ folder tree
    closeups_per_class: int = 0  # close-ups per class folder, never those of the false-face benchmark
    version: str = "0"
    extra: dict[str, Any] = field(default_factory=dict)
