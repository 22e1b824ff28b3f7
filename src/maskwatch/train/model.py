"""Classifier networks: a torchvision backbone (created by name) plus a small head."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

#: Backbones with a ``.features`` trunk; value: how many trailing feature blocks phase 2 unfreezes.
BACKBONES = {
    "mobilenet_v2": 5,
    "mobilenet_v3_small": 4,
    "mobilenet_v3_large": 5,
    "efficientnet_b0": 3,
    "resnet18": 2,
}


class Classifier(nn.Module):
    """``backbone -> head``; ``head`` is ``seed`` (pool, dense 128 + ReLU, dropout 0.5 — the
    classic tutorial recipe) or ``lean`` (pool, dropout 0.2, linear)."""

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int, head: str = "seed"):
        super().__init__()
        self.features = features
        if head == "seed":
            layers = [nn.Linear(feature_dim, 128), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(128, num_classes)]
        elif head == "lean":
            layers = [nn.Dropout(0.2), nn.Linear(feature_dim, num_classes)]
        else:
            raise ValueError(f"head must be 'seed' or 'lean', got {head!r}")
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(*layers)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; probabilities are ``softmax(logits)`` (done at inference by `maskwatch.ops`)."""
        return self.head(self.embed(x))


def _trunk(arch: str, net: nn.Module) -> nn.Module:
    if hasattr(net, "features"):
        return net.features
    if arch.startswith("resnet"):
        return nn.Sequential(
            nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), net.layer1, net.layer2, net.layer3, net.layer4
        )
    raise ValueError(f"backbone {arch!r} has no feature trunk maskwatch knows")


def build_model(arch: str = "mobilenet_v2", head: str = "seed", num_classes: int = 3,
                pretrained: str | Path | None = "torchvision") -> Classifier:
    """Create a classifier.

    Args:
        arch: a torchvision classification model name (see `BACKBONES`).
        pretrained: ``"torchvision"`` (torchvision's ImageNet download), a path to a state dict of
            the torchvision model (e.g. ``mobilenet_v2_imagenet.pth``), or ``None`` (from scratch).
    """
    import torchvision

    if arch not in BACKBONES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {', '.join(BACKBONES)}")
    if pretrained == "torchvision":
        net = torchvision.models.get_model(arch, weights="DEFAULT")
    else:
        net = torchvision.models.get_model(arch, weights=None)
        if pretrained:
            state = torch.load(pretrained, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        else:
            log.info("%s: no pretrained weights, training from scratch", arch)
    trunk = _trunk(arch, net)
    with torch.no_grad():
        trunk.eval()
        dim = trunk(torch.zeros(1, 3, 64, 64)).shape[1]
    return Classifier(trunk, dim, num_classes, head)


def set_trainable(model: Classifier, arch: str, phase: int) -> list[nn.Parameter]:
    """Phase 1: only the head trains. Phase 2: the head plus the top blocks of the backbone.

    Returns the trainable parameters. Frozen BatchNorm layers stay in eval mode (see `train_mode`).
    """
    for p in model.features.parameters():
        p.requires_grad = False
    if phase >= 2:
        for block in list(model.features.children())[-BACKBONES[arch]:]:
            for p in block.parameters():
                p.requires_grad = True
    for p in model.head.parameters():
        p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]


def train_mode(model: Classifier) -> None:
    """Train mode, except blocks with no trainable parameters (their BatchNorm stats stay fixed)."""
    model.train()
    for block in model.features.children():
        if not any(p.requires_grad for p in block.parameters()):
            block.eval()


def frozen_prefix(model: Classifier) -> int:
    """Number of leading feature blocks with nothing to train (run under no_grad)."""
    n = 0
    for block in model.features.children():
        if any(p.requires_grad for p in block.parameters()):
            break
        n += 1
    return n
