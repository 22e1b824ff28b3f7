"""Box calibration: map a detector's box style onto the annotation style of a dataset.

Face detectors disagree on what a face box is. YuNet's boxes include the forehead; the fmd
annotations (the faces maskwatch is scored on, and the crops the classifier learns from) are
about 12% shorter and centred 13% of the height lower. A calibration ``(dx, dy, sw, sh)`` moves
each box centre by ``(dx * w, dy * h)`` and scales its size by ``(sw, sh)``. `fit_box_calibration`
measures it (medians over matched faces) on the *training* side of a dataset;
`CalibratedDetector` applies it to any detector.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from . import ops
from .detectors import FaceDetector
from .faces import Faces

#: Calibrations measured with `fit_box_calibration` on the training side of fmd (the default
#: classifier's split; never the validation images), detector at scale 2.0, score >= 0.3, annotations
#: read as 1-based pixel indices (`maskwatch.voc`): ``scripts/fit_box_calibration.py``.
BOX_CALIBRATION: dict[str, tuple[float, float, float, float]] = {
    "yunet": (0.003, 0.113, 1.082, 0.934),
    "ssd": (0.0, 0.117, 1.039, 0.858),
}


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


class CalibratedDetector(FaceDetector):
    """Any detector with its boxes calibrated (``calibration=None``: the measured one for its name)."""

    def __init__(self, detector: FaceDetector, calibration: tuple[float, float, float, float] | None = None):
        self.inner = detector
        self.name = detector.name
        self.calibration = calibration or BOX_CALIBRATION.get(detector.name, (0.0, 0.0, 1.0, 1.0))

    def __getattr__(self, name: str) -> Any:  # scale, score_threshold, ... of the wrapped detector
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def detect(self, image: np.ndarray) -> Faces:
        faces = self.inner.detect(image)
        if not len(faces):
            return faces
        xyxy = calibrate_boxes(faces.xyxy, self.calibration)
        if faces.image_size:
            xyxy = ops.clip_boxes(xyxy, *faces.image_size)
        return Faces(xyxy=xyxy, det_score=faces.det_score, landmarks=faces.landmarks, probs=faces.probs,
                     labels=faces.labels, image_size=faces.image_size, source=faces.source)

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"CalibratedDetector({self.inner!r}, calibration={self.calibration})"
