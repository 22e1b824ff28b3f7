"""OpenCV's ResNet-10 SSD (Caffe), the face detector of the classic face-mask tutorials."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .. import ops
from .. import registry as model_files
from ..faces import Faces
from .base import FaceDetector
from .registry import register


#: calibration: fitted on the training side of fmd like YuNet's (scripts/fit_box_calibration.py).
@register("ssd", calibration=(0.0, 0.117, 1.039, 0.858), summary="OpenCV ResNet-10 SSD, the tutorials' detector")
class SSDDetector(FaceDetector):
    """OpenCV's ResNet-10 SSD (Caffe), as in the classic face-mask tutorials.

    The tutorials resize the whole frame to 300x300. The network is fully convolutional, so
    ``scale`` > 1 feeds it a larger square input (``300 * scale``), which finds smaller faces.
    The image itself is never resized (`input_scale` is 1): the network input is the square blob.
    """

    name = "ssd"

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.5, **kw: Any):
        super().__init__(scale=scale, score_threshold=score_threshold, **kw)
        self.input_side = max(32, round(300 * scale))
        self._net = cv2.dnn.readNetFromCaffe(str(model_files.resolve("ssd-prototxt")), str(model_files.resolve("ssd")))

    def input_scale(self, height: int, width: int) -> float:
        return 1.0

    def _detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        blob = cv2.dnn.blobFromImage(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 1.0, (self.input_side,) * 2, (104.0, 177.0, 123.0)
        )
        self._net.setInput(blob)
        out = self._net.forward()[0, 0]  # (N, 7): image id, class, score, x1, y1, x2, y2 (normalised)
        out = out[out[:, 2] >= self.score_threshold]
        xyxy = ops.clip_boxes(out[:, 3:7] * np.array([w, h, w, h], np.float32), w, h)
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2])
        return Faces(xyxy=xyxy, det_score=out[:, 2])
