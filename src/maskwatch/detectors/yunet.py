"""OpenCV's YuNet CNN (`cv2.FaceDetectorYN`): fast, accurate, 5 landmarks per face."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import registry as model_files
from ..faces import Faces
from .base import FaceDetector
from .registry import register


#: defaults: measured on the fmd validation photos (benchmarks/bench_detect.py): scale 1 with small photos
#: upscaled until their longer side is 800 px, faces from score 0.2. calibration: fitted with
#: `fit_box_calibration` on the training side of fmd (scripts/fit_box_calibration.py; never the validation
#: images), detector at scale 2.0, score >= 0.3: YuNet's boxes include the forehead, fmd's are about 7% shorter
#: and centred 11% of the height lower.
@register("yunet", defaults={"scale": 1.0, "min_side": 800, "score_threshold": 0.2},
          calibration=(0.003, 0.113, 1.082, 0.934), summary="OpenCV YuNet: fast, accurate, landmarks")
class YuNetDetector(FaceDetector):
    """OpenCV YuNet (`cv2.FaceDetectorYN`). Returns 5 landmarks per face."""

    name = "yunet"

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 top_k: int = 5000, model_path: str | Path | None = None, **kw: Any):
        super().__init__(scale=scale, score_threshold=score_threshold, **kw)
        path = str(model_path or model_files.resolve("yunet"))
        self._net = cv2.FaceDetectorYN.create(path, "", (320, 320), self.score_threshold, nms_threshold, top_k)

    def _detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if rows is None or len(rows) == 0:
            return Faces.empty()
        rows = np.asarray(rows, np.float32)
        rows = rows[np.isfinite(rows).all(1)]  # YuNet can emit NaN boxes on some close-up photos
        if not len(rows):
            return Faces.empty()
        xyxy = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2])
        return Faces(xyxy=xyxy, det_score=rows[:, 14], landmarks=rows[:, 4:14].reshape(-1, 5, 2))
