"""What the detector trainers share beyond checkpoints: the learning-rate schedule and validation."""

from __future__ import annotations

import math
from typing import Any


def warmup_cosine(step: int, total: int, lr: float, warmup_steps: int, floor: float = 0.02) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from ``lr`` down to ``floor * lr`` at ``total``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total - warmup_steps)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def validation_metrics(detector: Any, images: list) -> dict[str, Any]:
    """mAP@0.5, face AP and recall and per-class AP of ``detector`` (``detect(image, source=)``) on VOC images."""
    from ..evaluation import detection_metrics, run_pipeline

    m = detection_metrics(run_pipeline(detector, images))
    return {k: m.get(k) for k in ("mAP50", "face_AP50", "face_recall", "AP50")}
