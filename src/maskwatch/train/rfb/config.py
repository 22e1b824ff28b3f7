"""Settings of a single-pass detector training run, torch-free so that the CLI can build its
parser (``maskwatch train-detector``'s defaults) without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AugmentConfig:
    face_sizes: tuple[float, float] = (8.0, 320.0)  # anchor face side after rescaling, log-uniform (close-ups too)
    mosaic: float = 0.5  # probability that a training input is a 2x2 mosaic of half-size crops
    paste: float = 0.5  # probability of pasting one rare-class face (copy-paste)
    flip: float = 0.5
    blur: float = 0.2
    gray: float = 0.05


@dataclass
class RFBConfig:
    output: str = "runs/rfb"
    fmd: str | None = None  # Pascal VOC folders; fmd's evaluation split is held out
    ilc: str | None = None
    fmd_val: list[str] = field(default_factory=list)  # file names of fmd's validation photos
    data: list[str] = field(default_factory=list)  # more Pascal VOC folders (`maskwatch train-detector`)
    val_fraction: float = 0.2  # ilc and each of `data` held out by a hash of their duplicate groups
    ilc_style: tuple | None = None  # (src, dst) calibrations mapping ilc boxes onto fmd's style
    pretrained: str | None = None  # ultralight_RFB-640-masked_face-v2.pth
    init: str | None = None  # an exported RFB ONNX file to continue from instead (`model.from_onnx`)
    size: int = 384  # training input side
    batch_size: int = 24
    epochs: int = 30
    steps_per_epoch: int = 60
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    balance_power: float = 0.5  # class-balanced sampling: weight (n_max / n_c) ** power
    loss_class_power: float = 0.25  # positives' cross-entropy weight (n_max / n_c) ** power
    assign: str = "iou"  # prior-to-face assignment: "iou" (upstream's) or "atss" (`data.match`)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    min_side: int = 640  # validation input: photos upscaled to this longer side
    eval_every: int = 1
    threads: int = 0
    workers: int = -1  # processes making training batches; -1: `default_workers` (none on a CPU)
    seed: int = 0
    max_images: int = 0  # tests: cap the photos per dataset
    version: str = "1"
