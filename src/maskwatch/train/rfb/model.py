"""Ultra-Light-Fast RFB face detector (Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB, MIT), in
PyTorch with the upstream layer layout, so its published weights load with ``strict=True``.

The backbone is ``vision/nn/mb_tiny_RFB.py``'s ``Mb_Tiny_RFB.model`` (base channel 16: a stride-2
3x3 conv, depthwise-separable blocks, one RFB block), the heads are ``vision/ssd/mb_tiny_RFB_fd.py``'s:
four SSD levels at strides 8/16/32/64 (backbone layers 8, 11, 13 and one extra block) with
3/2/2/3 priors per cell. ``forward`` returns ``(logits (N, P, C), locations (N, P, 4))`` in the
upstream order (level, row, column, prior); `maskwatch.detectors.rfb` decodes them without torch.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...detectors.rfb import PRIORS_PER_CELL

BASE = 16


class BasicConv(nn.Sequential):
    """conv -> BatchNorm (eps 1e-5, momentum 0.01) -> optional ReLU, named ``conv``/``bn``/``relu``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.01)
        if relu:
            self.relu = nn.ReLU(inplace=True)


class BasicRFB(nn.Module):
    """Receptive Field Block: three dilated branches + a 1x1 shortcut (upstream ``BasicRFB``)."""

    def __init__(self, cin: int, cout: int, scale: float = 1.0, map_reduce: int = 8, vision: int = 1):
        super().__init__()
        self.scale = scale
        inter = cin // map_reduce
        self.branch0 = nn.Sequential(
            BasicConv(cin, inter, 1, relu=False),
            BasicConv(inter, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=vision + 1, dilation=vision + 1, relu=False))
        self.branch1 = nn.Sequential(
            BasicConv(cin, inter, 1, relu=False),
            BasicConv(inter, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=vision + 2, dilation=vision + 2, relu=False))
        self.branch2 = nn.Sequential(
            BasicConv(cin, inter, 1, relu=False),
            BasicConv(inter, (inter // 2) * 3, 3, padding=1),
            BasicConv((inter // 2) * 3, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=vision + 4, dilation=vision + 4, relu=False))
        self.ConvLinear = BasicConv(6 * inter, cout, 1, relu=False)
        self.shortcut = BasicConv(cin, cout, 1, relu=False)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return self.relu(self.ConvLinear(out) * self.scale + self.shortcut(x))


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _separable(cin: int, cout: int, kernel_size: int = 1, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cin, kernel_size, stride, padding, groups=cin), nn.ReLU(),
                         nn.Conv2d(cin, cout, 1))


def backbone() -> nn.Sequential:
    b = BASE
    return nn.Sequential(
        _conv_bn(3, b, 2), _conv_dw(b, 2 * b, 1), _conv_dw(2 * b, 2 * b, 2), _conv_dw(2 * b, 2 * b, 1),
        _conv_dw(2 * b, 4 * b, 2), _conv_dw(4 * b, 4 * b, 1), _conv_dw(4 * b, 4 * b, 1),
        BasicRFB(4 * b, 4 * b, scale=1.0),
        _conv_dw(4 * b, 8 * b, 2), _conv_dw(8 * b, 8 * b, 1), _conv_dw(8 * b, 8 * b, 1),
        _conv_dw(8 * b, 16 * b, 2), _conv_dw(16 * b, 16 * b, 1))


#: Backbone layer index after which each of the first three SSD levels reads its features.
SOURCE_LAYERS = (8, 11, 13)
LEVEL_CHANNELS = (4 * BASE, 8 * BASE, 16 * BASE, 16 * BASE)


class RFBDetector(nn.Module):
    """The RFB SSD with ``num_classes`` outputs per prior (class 0 = background)."""

    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.num_classes = num_classes
        self.base_net = backbone()
        self.extras = nn.ModuleList([nn.Sequential(
            nn.Conv2d(16 * BASE, 4 * BASE, 1), nn.ReLU(),
            _separable(4 * BASE, 16 * BASE, 3, stride=2, padding=1), nn.ReLU())])
        self.classification_headers = self._heads(num_classes)
        self.regression_headers = self._heads(4)

    @staticmethod
    def _heads(per_prior: int) -> nn.ModuleList:
        heads = [_separable(c, k * per_prior, 3, padding=1) for c, k in zip(LEVEL_CHANNELS[:3], PRIORS_PER_CELL)]
        heads.append(nn.Conv2d(LEVEL_CHANNELS[3], PRIORS_PER_CELL[3] * per_prior, 3, padding=1))
        return nn.ModuleList(heads)

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, start = [], 0
        for end in SOURCE_LAYERS:
            for layer in self.base_net[start:end]:
                x = layer(x)
            feats.append(x)
            start = end
        for layer in self.extras:
            x = layer(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, locs = [], []
        for i, f in enumerate(self.levels(x)):
            n = f.shape[0]
            logits.append(self.classification_headers[i](f).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes))
            locs.append(self.regression_headers[i](f).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(logits, 1), torch.cat(locs, 1)


class RFBInference(nn.Module):
    """The exported graph: class probabilities (softmax) and raw prior offsets."""

    def __init__(self, model: RFBDetector):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, locs = self.model(x)
        return F.softmax(logits, dim=2), locs


def load_upstream(path: str | Path) -> RFBDetector:
    """The published masked-face RFB weights (classes background / face / masked_face), ``strict=True``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    num_classes = state["classification_headers.3.weight"].shape[0] // PRIORS_PER_CELL[3]
    model = RFBDetector(num_classes)
    model.load_state_dict(state, strict=True)
    return model


#: Upstream masked-face class -> the maskwatch labels it initialises (`init_from_upstream`).
UPSTREAM_INIT = {"with_mask": ("masked_face",), "without_mask": ("face",),
                 "mask_worn_incorrectly": ("masked_face", "face")}
UPSTREAM_CLASSES = ("background", "face", "masked_face")


def init_from_upstream(path: str | Path, labels: tuple[str, ...]) -> RFBDetector:
    """An RFB detector for background + ``labels`` initialised from the published weights: the
    backbone, box heads and background scores as they are; each label's class scores from the
    upstream class(es) of `UPSTREAM_INIT` (averaged for an incorrectly worn mask, which is part face,
    part masked face), minus log(number of labels sharing them) so that the face probability the
    network already knows is split, not multiplied."""
    up = load_upstream(path)
    model = RFBDetector(1 + len(labels))
    state = up.state_dict()
    new = model.state_dict()
    for key, value in state.items():
        if not key.startswith("classification_headers") or key.endswith(".0.weight") or key.endswith(".0.bias"):
            new[key] = value.clone()  # depthwise convs of the class heads have no class axis
    src_index = {name: i for i, name in enumerate(UPSTREAM_CLASSES)}
    users = {name: sum(name in UPSTREAM_INIT[label] for label in labels) for name in UPSTREAM_CLASSES}
    for i, k in enumerate(PRIORS_PER_CELL):
        key = f"classification_headers.{i}" + (".2" if i < 3 else "")
        w_up, b_up = state[key + ".weight"], state[key + ".bias"]
        w, b = new[key + ".weight"], new[key + ".bias"]
        c_up, c = len(UPSTREAM_CLASSES), 1 + len(labels)
        for p in range(k):
            w[p * c] = w_up[p * c_up]
            b[p * c] = b_up[p * c_up]
            for j, label in enumerate(labels, start=1):
                rows = [p * c_up + src_index[s] for s in UPSTREAM_INIT[label]]
                w[p * c + j] = w_up[rows].mean(0)
                share = sum(users[s] for s in UPSTREAM_INIT[label]) / len(rows)
                b[p * c + j] = b_up[rows].mean(0) - torch.log(torch.tensor(float(share)))
    model.load_state_dict(new, strict=True)
    return model


@torch.no_grad()
def from_onnx(path: str | Path, sample: torch.Tensor) -> RFBDetector:
    """A trainable `RFBDetector` from an exported maskwatch RFB ONNX file (the shipped model, say), to
    fine-tune it further when its training checkpoint is gone.

    The export folded each BatchNorm into the convolution before it. Each one is rebuilt so that the
    network computes the same function: the convolution takes the folded weight, its BatchNorm the
    running statistics of that convolution's output on ``sample`` (a batch of training inputs, so
    train-mode batch statistics start close to them), weight ``sqrt(var + eps)`` and bias
    ``mean + folded bias``. ONNX convolutions are matched to the modules in execution order, by shape.

    Raises:
        ValueError: the file is not this architecture (counts or shapes differ).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    class_heads = [n for n in nodes if "classification_headers" in n.name]
    if not class_heads:
        raise ValueError(f"{path}: not an exported RFB detector (no classification_headers convolutions)")
    model = RFBDetector(inits[class_heads[-1].input[1]].shape[0] // PRIORS_PER_CELL[3])
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod)) for m in model.modules()
             if isinstance(m, nn.Conv2d)]
    model.eval()(sample[:1])
    for h in hooks:
        h.remove()
    if len(order) != len(nodes):
        raise ValueError(f"{path}: {len(nodes)} convolutions, the RFB detector has {len(order)}")
    bn_after = {}
    for parent in model.modules():  # each bias-free conv is followed by its BatchNorm in the same Sequential
        kids = list(parent.children())
        for a, b in zip(kids, kids[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                bn_after[a] = b
    folded_bias = {}
    for conv, node in zip(order, nodes):
        w = torch.from_numpy(inits[node.input[1]].copy())
        b = torch.from_numpy(inits[node.input[2]].copy()) if len(node.input) > 2 else torch.zeros(w.shape[0])
        if w.shape != conv.weight.shape:
            raise ValueError(f"{path}: {node.name} has weights {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
        conv.weight.copy_(w)
        if conv in bn_after:
            folded_bias[conv] = b
        else:
            conv.bias.copy_(b)

    def measure(conv):
        def hook(mod, inputs, out):
            bn = bn_after[conv]  # set before it runs: the conv output through, plus the folded bias
            mean, var = out.mean((0, 2, 3)), out.var((0, 2, 3), unbiased=False)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.copy_(mean + folded_bias[conv])
        return hook

    hooks = [conv.register_forward_hook(measure(conv)) for conv in bn_after]
    model.eval()(sample)  # eval mode: each BatchNorm is set by its hook before it runs
    for h in hooks:
        h.remove()
    return model
