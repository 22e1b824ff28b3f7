"""Fine-tune YuNet into a single-pass face + mask detector with the RFB detector's loop
(`maskwatch.train.rfb.loop.fit`, same data, sampling, augmentation, validation and checkpoints);
only the model, the targets (SimOTA) and the loss differ: `YUNET`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...detectors import yunetmask
from ...faces import Faces
from ...labels import LABELS
from ...spec import ModelSpec
from ..rfb.data import Augmenter
from ..rfb.loop import Recipe, RFBConfig
from .loss import yunet_loss
from .model import YuNet, YuNetInference, init_from_upstream


class TorchYuNet(yunetmask.YuNetMaskDecoder):
    """The torch model behind the same pre/post-processing as at inference (for validation)."""

    def __init__(self, model: YuNet, spec: ModelSpec, score_threshold: float = 0.05):
        self.net = YuNetInference(model).eval()
        super().__init__(spec, score_threshold, min_side=int(spec.extra.get("min_side", 0)))

    @torch.no_grad()
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dev = next(self.net.parameters()).device
        return tuple(t.cpu().numpy() for t in self.net(torch.from_numpy(x).to(dev)))

    def detect(self, image: np.ndarray, source: str | None = None) -> Faces:
        return super().detect(image).with_meta(source=source)


class YuNetRecipe(Recipe):
    arch = yunetmask.ARCH

    def model(self, cfg: RFBConfig, aug: Augmenter) -> torch.nn.Module:
        if cfg.init:
            raise ValueError("the YuNet candidate is not exported: it has no ONNX file to continue from")
        return init_from_upstream(cfg.pretrained, LABELS) if cfg.pretrained else YuNet("s", 1 + len(LABELS))

    def empty(self, spec: ModelSpec) -> torch.nn.Module:
        return YuNet(spec.extra.get("size", "s"), 1 + len(spec.labels))

    def batch(self, aug: Augmenter, cfg: RFBConfig, rng: np.random.Generator) -> dict[str, Any]:
        imgs, boxes, labels = [], [], []
        for _ in range(cfg.batch_size):
            img, b, lab = aug(cfg.size, rng)
            imgs.append(yunetmask.to_input(img)[0])
            boxes.append(torch.from_numpy(b.reshape(-1, 4)))
            labels.append(torch.from_numpy(lab))
        return {"input": torch.from_numpy(np.stack(imgs)), "boxes": boxes, "labels": labels}

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], class_weights: torch.Tensor) -> dict[str, torch.Tensor]:
        dev = next(model.parameters()).device
        x = batch["input"].to(dev)
        pts = torch.from_numpy(np.array(yunetmask.points(x.shape[2], x.shape[3]))).to(dev)
        cls, obj, box, _ = model.raw_forward(x)
        return yunet_loss(cls, obj, box, pts, [b.to(dev) for b in batch["boxes"]], [lab.to(dev) for lab in batch["labels"]],
                          class_weights.to(dev))

    def decoder(self, model: torch.nn.Module, spec: ModelSpec) -> Any:
        return TorchYuNet(model, spec)

    def spec(self, cfg: RFBConfig) -> ModelSpec:
        return ModelSpec(kind="detector", labels=LABELS, input_size=cfg.size, mean=(0.0, 0.0, 0.0),
                         std=(1 / 255,) * 3, crop_margin=0.0, arch=yunetmask.ARCH, version=cfg.version,
                         extra={"min_side": cfg.min_side, "scale": 1.0, "channels": "BGR", "pad": yunetmask.PAD,
                                "strides": list(yunetmask.STRIDES), "size": "s"})


YUNET = YuNetRecipe()
