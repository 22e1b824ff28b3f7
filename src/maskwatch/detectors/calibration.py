"""Box calibration: map a detector's box style onto the annotation style of a dataset.

Face detectors disagree on what a face box is. YuNet's boxes include the forehead; the fmd
annotations (the faces maskwatch is scored on, and the crops the classifier learns from) are
about 12% shorter and centred 13% of the height lower. A calibration ``(dx, dy, sw, sh)`` moves
each box centre by ``(dx * w, dy * h)`` and scales its size by ``(sw, sh)``. `fit_box_calibration`
measures it (medians over matched faces) on the *training* side of a dataset;
`Calibrated` applies it to any detector callable; each detector's measured calibration is in its
registry entry (`maskwatch.detectors.registry`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import ops
from ..faces import Faces
from .base import Detector, describe

def calibrate_boxes(xyxy: np.ndarray, calibration: tuple[float, float, float, float]) -> np.ndarray:
    """Boxes moved by ``(dx * w, dy * h)`` and scaled by ``(sw, sh)`` about their centres."""
    dx, dy, sw, sh = calibration
    boxes = ops.as_boxes(xyxy)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 + dx * w, (boxes[:, 1] + boxes[:, 3]) / 2 + dy * h
    w, h = w * sw, h * sh
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


def fit_box_calibration(pairs: Iterable[tuple[np.ndarray, np.ndarray]], min_iou: float = 0.3) -> tuple[float, float, float, float]:
    """Median ``(dx, dy, sw, sh)`` over detections matched (best IoU >= ``min_iou``) to annotations.

    Args:
        pairs: per image ``(detected xyxy, annotated xyxy)``.
    """
    rel = []
    for det, gt in pairs:
        det, gt = ops.as_boxes(det), ops.as_boxes(gt)
        if not len(det) or not len(gt):
            continue
        iou = ops.box_iou(det, gt)
        best = iou.argmax(1)
        for d, g in enumerate(best):
            if iou[d, g] < min_iou:
                continue
            a, b = det[d], gt[g]
            w, h = a[2] - a[0], a[3] - a[1]
            if w <= 0 or h <= 0:
                continue
            rel.append([((b[0] + b[2]) - (a[0] + a[2])) / 2 / w, ((b[1] + b[3]) - (a[1] + a[3])) / 2 / h,
                        (b[2] - b[0]) / w, (b[3] - b[1]) / h])
    if not rel:
        raise ValueError("no detection matches an annotation; cannot fit a box calibration")
    return tuple(float(v) for v in np.median(np.asarray(rel), 0))  # type: ignore[return-value]


class Calibrated:
    """Any detector callable with its boxes calibrated: composition, not a detector subclass.

    Args:
        detector: the wrapped ``image -> Faces`` callable.
        calibration: ``(dx, dy, sw, sh)``; the registry holds each detector's measured one
            (`maskwatch.detectors.registry.build` applies it).
    """

    def __init__(self, detector: Detector, calibration: tuple[float, float, float, float]):
        self.detector = detector
        self.name = getattr(detector, "name", "detector")
        self.calibration = tuple(float(v) for v in calibration)

    def detect(self, image: np.ndarray) -> Faces:
        faces = self.detector(image)
        if not len(faces):
            return faces
        xyxy = calibrate_boxes(faces.xyxy, self.calibration)
        if faces.image_size:
            xyxy = ops.clip_boxes(xyxy, *faces.image_size)
        return faces.with_boxes(xyxy)

    __call__ = detect

    def describe(self) -> dict[str, Any]:
        return {**describe(self.detector), "calibration": self.calibration}

    def __repr__(self) -> str:
        return f"Calibrated({self.detector!r}, calibration={self.calibration})"
