"""The detector network: a MobileNetV2 trunk, a top-down pyramid and a CenterNet head at stride 4,
and the spec its checkpoints and ONNX files carry (`spec_for`)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...labels import LABELS
from ...spec import ModelSpec
from ..detector_config import DetectorConfig

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
STRIDE = 4


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


def spec_for(cfg: DetectorConfig, scale: float | None = None) -> ModelSpec:
    """The spec of a model trained with ``cfg`` (labels, input size, mean/std, stride, scale, channels)."""
    return ModelSpec(kind="detector", labels=LABELS, input_size=max(cfg.crop_sizes), mean=MEAN, std=STD,
                     crop_margin=0.0, arch="mobilenet_v2-centernet", version=cfg.version,
                     extra={"stride": STRIDE, "scale": scale or cfg.val_scale, "channels": cfg.channels})
