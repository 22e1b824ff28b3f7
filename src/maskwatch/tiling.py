"""Tiling: run a face detector on overlapping tiles of a very large image.

A detector with a bounded input (the res10 SSD squeezes every image into 300x300, a ``max_side`` cap
shrinks a 12-megapixel photo) loses the small faces of a large photo. `TiledDetector` cuts the
image into overlapping ``tile`` x ``tile`` squares at full resolution, detects in each, drops faces
cut by an inner tile edge (the overlap holds them whole in the neighbouring tile), adds one pass
over the whole image shrunk to a tile (for faces larger than the overlap) and merges everything
with NMS. Images no larger than a tile go straight to the wrapped detector.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from . import ops
from .detectors import FaceDetector
from .ensemble import merge_faces
from .faces import Faces
from .imageio import as_rgb_array


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles covering ``length`` pixels, evenly spread, overlapping >= ``overlap``."""
    if length <= tile:
        return [0]
    step = tile * (1 - overlap)
    n = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


class TiledDetector(FaceDetector):
    """Wraps a detector: full-resolution overlapping tiles + one whole-image pass, merged by NMS.

    Args:
        detector: any `FaceDetector` (its own scale/threshold apply within each tile).
        tile: tile side in image pixels.
        overlap: fraction of a tile shared with its neighbour; faces up to ``overlap * tile`` px are
            seen whole in some tile, larger ones by the whole-image pass.
        nms_threshold: IoU above which faces found twice (overlaps, whole-image pass) are merged.
    """

    def __init__(self, detector: FaceDetector, tile: int = 1024, overlap: float = 0.25, nms_threshold: float = 0.4):
        if tile < 64 or not 0 <= overlap < 1:
            raise ValueError(f"tile must be >= 64 px and overlap in [0, 1), got {tile}, {overlap}")
        self.inner = detector
        self.name = detector.name
        self.tile, self.overlap, self.nms_threshold = int(tile), float(overlap), float(nms_threshold)

    def __getattr__(self, name: str) -> Any:  # scale, score_threshold, ... of the wrapped detector
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        if max(h, w) <= self.tile:
            return self.inner.detect(image)
        parts = []
        edge = 2.0  # px: a box this close to an inner tile edge was cut by it
        for y0 in tile_origins(h, self.tile, self.overlap):
            for x0 in tile_origins(w, self.tile, self.overlap):
                sub = image[y0:y0 + self.tile, x0:x0 + self.tile]
                faces = self.inner.detect(sub)
                if not len(faces):
                    continue
                th, tw = sub.shape[:2]
                b = faces.xyxy
                cut = ((b[:, 0] < edge) & (x0 > 0)) | ((b[:, 1] < edge) & (y0 > 0)) \
                    | ((b[:, 2] > tw - edge) & (x0 + tw < w)) | ((b[:, 3] > th - edge) & (y0 + th < h))
                faces = faces[~cut]
                parts.append(_shifted(faces, x0, y0))
        f = self.tile / max(h, w)
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        whole = self.inner.detect(small)
        parts.append(_shifted(whole, 0, 0, (w / small.shape[1], h / small.shape[0])))
        merged = merge_faces(parts, self.nms_threshold)
        xyxy = ops.clip_boxes(merged.xyxy, w, h)
        return Faces(xyxy=xyxy, det_score=merged.det_score, probs=merged.probs, landmarks=merged.landmarks,
                     image_size=(w, h))

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"TiledDetector({self.inner!r}, tile={self.tile}, overlap={self.overlap})"


def _shifted(faces: Faces, dx: float, dy: float, factor: tuple[float, float] = (1.0, 1.0)) -> Faces:
    fx, fy = factor
    xyxy = faces.xyxy * np.float32([fx, fy, fx, fy]) + np.float32([dx, dy, dx, dy])
    lms = None if faces.landmarks is None else faces.landmarks * np.float32([fx, fy]) + np.float32([dx, dy])
    return Faces(xyxy=xyxy, det_score=faces.det_score, probs=faces.probs, landmarks=lms)
