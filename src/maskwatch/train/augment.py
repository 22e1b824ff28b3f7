"""Augmentation (torchvision transforms v2) on cached crops.

Cached crops are ``canvas`` pixels with the nominal face crop in the centre ``size`` pixels. Training
applies the seed recipe's geometry (rotation, zoom, shift, shear, horizontal flip) to the canvas,
cuts the centre, then what real cameras do: small faces upscaled from 12-32 px, blur, low light,
colour casts, noise, JPEG artefacts. Evaluation only cuts the centre. Normalisation uses the same
mean/std as `maskwatch.ops.normalize` at inference. `photometric` is the colour jitter of both
detector trainers (NumPy, on whole training inputs).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


class RandomSmallFace(nn.Module):
    """Downscale to a random face size in ``[lo, hi]`` px and back: small, blurry crowd faces."""

    def __init__(self, lo: int = 12, hi: int = 32, p: float = 0.3):
        super().__init__()
        self.lo, self.hi, self.p = lo, hi, p

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return img
        size = img.shape[-1]
        small = int(torch.randint(self.lo, self.hi + 1, ()))
        img = F.resize(img, [small, small], antialias=True)
        return F.resize(img, [size, size], antialias=False)


class RandomLowLight(nn.Module):
    """Darken with a gamma > 1 and a gain < 1, plus sensor noise (p of the time)."""

    def __init__(self, p: float = 0.2):
        super().__init__()
        self.p = p

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return img
        x = img.float() / 255
        gamma = 1.2 + 1.3 * torch.rand(())
        gain = 0.4 + 0.5 * torch.rand(())
        x = gain * x.pow(gamma) + torch.randn_like(x) * 0.02 * torch.rand(())
        return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def train_transform(size: int, mean, std) -> v2.Compose:
    return v2.Compose([
        v2.RandomAffine(degrees=15, translate=(0.08, 0.08), scale=(0.85, 1.2), shear=8),
        v2.CenterCrop(size),
        v2.RandomHorizontalFlip(),
        RandomSmallFace(12, 32, p=0.3),
        v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.15),
        v2.RandomApply([v2.ColorJitter(0.35, 0.35, 0.35, 0.04)], p=0.8),
        RandomLowLight(p=0.15),
        v2.RandomGrayscale(p=0.05),
        v2.RandomApply([v2.JPEG((25, 95))], p=0.3),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def eval_transform(size: int, mean, std) -> v2.Compose:
    return v2.Compose([v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


class CropDataset(torch.utils.data.Dataset):
    """Cached uint8 HWC crops + labels -> (CHW float tensor, label)."""

    def __init__(self, crops, labels, indices, transform):
        self.crops, self.labels, self.indices, self.transform = crops, labels, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = self.indices[i]
        img = torch.from_numpy(self.crops[j].copy()).permute(2, 0, 1)
        return self.transform(img), int(self.labels[j])


def photometric(img: np.ndarray, rng: np.random.Generator, blur: float = 0.2, gray: float = 0.1) -> np.ndarray:
    """RGB uint8 -> contrast x0.7-1.3, brightness +-25, saturation x0.5-1.5 (p 0.5), a 3 or 5 px
    Gaussian blur (p ``blur``), grayscale (p ``gray``)."""
    x = img.astype(np.float32)
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # contrast, brightness
    if rng.uniform() < 0.5:  # saturation
        g = x.mean(2, keepdims=True)
        x = g + (x - g) * rng.uniform(0.5, 1.5)
    if rng.uniform() < blur:
        k = int(rng.choice([3, 5]))
        x = cv2.GaussianBlur(x, (k, k), 0)
    if rng.uniform() < gray:
        x[:] = x.mean(2, keepdims=True)
    return x.clip(0, 255).astype(np.uint8)
