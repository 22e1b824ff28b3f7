"""YuNet (libfacedetection.train, Apache-2.0) in PyTorch with the upstream layer layout, so its
published checkpoints (``yunet_s.pth``, ``yunet_n.pth``) load with ``strict=True``.

Upstream: ``mmdet/models/utils/yunet_layer.py`` (``ConvDPUnit``, ``Conv_head``, ``Conv4layerBlock``),
``backbones/yunet_backbone.py``, ``necks/tfpn.py`` and ``dense_heads/yunet_head.py``; the sizes are
``configs/yunet_s.py`` / ``yunet_n.py``. Three anchor-free levels at strides 8/16/32, one point per
cell; per point a class score, an objectness, a box ``(dx, dy, log w, log h)`` in units of the stride
and five landmarks. The network takes BGR in 0..255 (no normalisation).

``forward`` returns the twelve maps flattened like the official ONNX export (``cls_8 .. kps_32``,
each ``(N, H*W, C)``, scores after sigmoid), so the port can be compared with that file tensor by
tensor; `raw_forward` gives the logits for training.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (8, 16, 32)
#: (stage channels, feature channels, shared head convs) of the two published sizes
#: (configs/yunet_s.py, yunet_n.py; "n" is the larger one)
SIZES = {
    "s": ([[3, 16, 16], [16, 32], [32, 64], [64, 64], [64, 64], [64, 64]], 64, 0),
    "n": ([[3, 16, 16], [16, 64], [64, 64], [64, 64], [64, 64], [64, 64]], 64, 1),
}
DOWNSAMPLE_IDX = (0, 2, 3, 4)
OUT_IDX = (3, 4, 5)
KPS = 5


class ConvDPUnit(nn.Module):
    """1x1 conv, 3x3 depthwise conv, optionally BatchNorm + ReLU (upstream ``ConvDPUnit``)."""

    def __init__(self, cin: int, cout: int, bn_relu: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, 1, 0, bias=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=True, groups=cout)
        self.bn_relu = bn_relu
        if bn_relu:
            self.bn = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return self.relu(self.bn(x)) if self.bn_relu else x


class ConvHead(nn.Module):
    """Stride-2 3x3 conv + BN + ReLU, then a `ConvDPUnit` (upstream ``Conv_head``)."""

    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, 2, 1, bias=True)
        self.conv2 = ConvDPUnit(mid, cout, True)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu1(self.bn1(self.conv1(x))))


class Conv4LayerBlock(nn.Module):
    """Two `ConvDPUnit` (upstream ``Conv4layerBlock``)."""

    def __init__(self, cin: int, cout: int, bn_relu: bool = True):
        super().__init__()
        self.conv1 = ConvDPUnit(cin, cin, True)
        self.conv2 = ConvDPUnit(cin, cout, bn_relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class Backbone(nn.Module):
    def __init__(self, stage_channels: list[list[int]]):
        super().__init__()
        self.n = len(stage_channels)
        self.model0 = ConvHead(*stage_channels[0])
        for i in range(1, self.n):
            self.add_module(f"model{i}", Conv4LayerBlock(*stage_channels[i]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i in range(self.n):
            x = getattr(self, f"model{i}")(x)
            if i in OUT_IDX:
                out.append(x)
            if i in DOWNSAMPLE_IDX:
                x = F.max_pool2d(x, 2)
        return out


class TFPN(nn.Module):
    """Top-down feature pyramid: lateral `ConvDPUnit` per level, nearest 2x upsampling, sum."""

    def __init__(self, channels: list[int]):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvDPUnit(c, c, True) for c in channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        feats = list(feats)
        for i in range(len(feats) - 1, 0, -1):
            feats[i] = self.lateral_convs[i](feats[i])
            feats[i - 1] = feats[i - 1] + F.interpolate(feats[i], scale_factor=2.0, mode="nearest")
        feats[0] = self.lateral_convs[0](feats[0])
        return feats


class Head(nn.Module):
    """Per level: optional shared `ConvDPUnit`s, then class, box, objectness and landmark `ConvDPUnit`
    without BN (upstream ``YuNet_Head`` with ``stacked_convs=0``)."""

    def __init__(self, channels: int, num_classes: int = 1, shared: int = 0):
        super().__init__()
        self.num_classes = num_classes
        levels = range(len(STRIDES))
        if shared:
            self.multi_level_share_convs = nn.ModuleList(
                nn.Sequential(*(ConvDPUnit(channels, channels) for _ in range(shared))) for _ in levels)
        self.multi_level_cls = nn.ModuleList(ConvDPUnit(channels, num_classes, False) for _ in levels)
        self.multi_level_bbox = nn.ModuleList(ConvDPUnit(channels, 4, False) for _ in levels)
        self.multi_level_obj = nn.ModuleList(ConvDPUnit(channels, 1, False) for _ in levels)
        self.multi_level_kps = nn.ModuleList(ConvDPUnit(channels, 2 * KPS, False) for _ in levels)

    def forward(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        if hasattr(self, "multi_level_share_convs"):
            feats = [m(f) for m, f in zip(self.multi_level_share_convs, feats)]
        return tuple([m(f) for m, f in zip(mods, feats)] for mods in
                     (self.multi_level_cls, self.multi_level_obj, self.multi_level_bbox, self.multi_level_kps))


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])


class YuNet(nn.Module):
    """YuNet with ``num_classes`` class scores per point (1 upstream: face)."""

    def __init__(self, size: str = "s", num_classes: int = 1):
        super().__init__()
        stages, channels, shared = SIZES[size]
        self.size = size
        self.backbone = Backbone(stages)
        self.neck = TFPN([channels] * len(OUT_IDX))
        self.bbox_head = Head(channels, num_classes, shared)

    def raw_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(cls logits (N, P, C), obj logits (N, P), box (N, P, 4), kps (N, P, 10))``, levels concatenated."""
        cls, obj, box, kps = self.bbox_head(self.neck(self.backbone(x)))
        return (torch.cat([_flat(c) for c in cls], 1), torch.cat([_flat(o) for o in obj], 1)[..., 0],
                torch.cat([_flat(b) for b in box], 1), torch.cat([_flat(k) for k in kps], 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The official ONNX's twelve outputs: ``cls_8, cls_16, cls_32, obj_*, bbox_*, kps_*``."""
        cls, obj, box, kps = self.bbox_head(self.neck(self.backbone(x)))
        return ([_flat(c).sigmoid() for c in cls] + [_flat(o).sigmoid() for o in obj]
                + [_flat(b) for b in box] + [_flat(k) for k in kps])


def load_upstream(path: str | Path, size: str | None = None) -> YuNet:
    """A published checkpoint (``{"state_dict": ..., "meta": ...}``) loaded with ``strict=True``, in eval mode."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    state = ck.get("state_dict", ck)
    if size is None:  # yunet_n widens the second stage
        size = "n" if state["backbone.model1.conv2.conv1.weight"].shape[0] == 64 else "s"
    model = YuNet(size)
    model.load_state_dict(state, strict=True)
    return model.eval()


def init_from_upstream(path: str | Path, labels: tuple[str, ...]) -> YuNet:
    """A YuNet with a face score and ``labels`` class scores per point, initialised from a published
    checkpoint: everything as it is, the face channel of the class head too; each label's channel
    starts as a copy of the face channel (equal logits: a uniform softmax that training separates)."""
    up = load_upstream(path)
    model = YuNet(up.size, 1 + len(labels))
    new = model.state_dict()
    for key, value in up.state_dict().items():
        if key.startswith("bbox_head.multi_level_cls.") and value.ndim:
            new[key] = value[:1].repeat(1 + len(labels), *([1] * (value.ndim - 1)))
        else:
            new[key] = value.clone()
    model.load_state_dict(new, strict=True)
    return model


class YuNetInference(nn.Module):
    """The exported graph (`maskwatch.detectors.yunetmask`): face scores, label probabilities, raw boxes."""

    def __init__(self, model: YuNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls, obj, box, _ = self.model.raw_forward(x)
        score = torch.sqrt(torch.sigmoid(cls[..., 0]) * torch.sigmoid(obj))
        return score, F.softmax(cls[..., 1:], dim=-1), box
