"""The Viola-Jones Haar cascade shipped with OpenCV 4.x: fastest, least accurate, misses most masked
and small faces; kept to reproduce the tutorials' results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..faces import Faces
from .base import FaceDetector
from .registry import register


@register("haar", summary="Viola-Jones Haar cascade of the tutorials: fastest, least accurate")
class HaarDetector(FaceDetector):
    """Viola-Jones Haar cascade (``haarcascade_frontalface_default.xml`` inside OpenCV 4.x).

    The cascade has no calibrated confidence; ``det_score`` is 1 for every face.
    """

    name = "haar"

    def __init__(self, scale: float = 1.0, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 20,
                 **kw: Any):
        kw.setdefault("score_threshold", 0.0)
        super().__init__(scale=scale, **kw)
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FileNotFoundError(f"Haar cascade not found at {path} (OpenCV 4.x headless ships it)")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def _detect(self, image: np.ndarray) -> Faces:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        if len(rects) == 0:
            return Faces.empty()
        rects = np.asarray(rects, np.float32)
        return Faces(xyxy=np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1))
