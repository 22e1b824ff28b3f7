"""Drawing results: annotators take an RGB image and `Faces` and return a new image."""

from __future__ import annotations

import cv2
import numpy as np

from . import ops
from .faces import Faces
from .labels import COLORS

UNCLASSIFIED = (80, 160, 255)


class BoxAnnotator:
    """Box, label and confidence per face, one colour per label."""

    def __init__(self, thickness: int | None = None, font_scale: float | None = None, show_track: bool = True):
        self.thickness = thickness
        self.font_scale = font_scale
        self.show_track = show_track

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        out = image.copy()
        h, w = out.shape[:2]
        thick = self.thickness or max(1, round(max(h, w) / 500))
        font = self.font_scale or max(0.35, max(h, w) / 1600)
        labels = faces.label
        for i, box in enumerate(np.round(faces.xyxy).astype(int)):
            label = labels[i] if labels else None
            color = COLORS.get(label, UNCLASSIFIED) if label else UNCLASSIFIED
            x1, y1, x2, y2 = box.tolist()
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
            text = f"{label} {faces.confidence[i]:.2f}" if label else f"face {faces.det_score[i]:.2f}"
            if self.show_track and faces.track_id is not None:
                text = f"#{faces.track_id[i]} {text}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, thick // 2))
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else min(y2 + th + base + 2, h - 1)
            tx = max(0, min(x1, w - tw - 3))  # keep the label inside the image
            cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 2, ty + 1), color, -1)
            cv2.putText(out, text, (tx + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255),
                        max(1, thick // 2), cv2.LINE_AA)
        return out


class BlurAnnotator:
    """Blurs every face (privacy); a strong Gaussian blur over the face box plus a margin."""

    def __init__(self, margin: float = 0.1, strength: float = 0.5):
        self.margin = margin
        self.strength = strength

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        out = image.copy()
        h, w = out.shape[:2]
        boxes = ops.clip_boxes(ops.square_boxes(faces.xyxy, self.margin) if len(faces) else faces.xyxy, w, h)
        for x1, y1, x2, y2 in np.round(boxes).astype(int):
            if x2 <= x1 or y2 <= y1:
                continue
            roi = out[y1:y2, x1:x2]
            k = max(3, int(max(roi.shape[:2]) * self.strength) | 1)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(roi, (k, k), 0)
        return out


def annotate(image: np.ndarray, faces: Faces, blur: bool = False) -> np.ndarray:
    """Draw ``faces`` on a copy of ``image`` (optionally blurring the faces first)."""
    if blur:
        image = BlurAnnotator().annotate(image, faces)
    return BoxAnnotator().annotate(image, faces)
