"""Tiling: run a face detector on overlapping tiles of a very large image.

A detector with a bounded input (the res10 SSD squeezes every image into 300x300, a ``max_side`` cap
shrinks a 12-megapixel photo) loses the small faces of a large photo. `Tiled` cuts the
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

from .. import ops
from ..faces import Faces
from ..imageio import as_rgb_array
from .base import Detector, describe


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles covering ``length`` pixels, evenly spread, overlapping >= ``overlap``."""
    if length <= tile:
        return [0]
    step = tile * (1 - overlap)
    n = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


class Tiled:
    """Wraps any detector callable: full-resolution overlapping tiles + one whole-image pass, merged by NMS.

    Args:
        detector: any ``image -> Faces`` callable (its own scale/threshold apply within each tile).
        tile: tile side in image pixels.
        overlap: fraction of a tile shared with its neighbour; faces up to ``overlap * tile`` px are
            seen whole in some tile, larger ones by the whole-image pass.
        nms_threshold: IoU above which faces found twice (overlaps, whole-image pass) are merged.
    """

    def __init__(self, detector: Detector, tile: int = 1024, overlap: float = 0.25, nms_threshold: float = 0.4):
        if tile < 64 or not 0 <= overlap < 1:
            raise ValueError(f"tile must be >= 64 px and overlap in [0, 1), got {tile}, {overlap}")
        self.detector = detector
        self.name = getattr(detector, "name", "detector")
        self.tile, self.overlap, self.nms_threshold = int(tile), float(overlap), float(nms_threshold)

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        if max(h, w) <= self.tile:
            return self.detector(image)
        parts = []
        edge = 2.0  # px: a box this close to an inner tile edge was cut by it
        for y0 in tile_origins(h, self.tile, self.overlap):
            for x0 in tile_origins(w, self.tile, self.overlap):
                sub = image[y0:y0 + self.tile, x0:x0 + self.tile]
                faces = self.detector(sub)
                if not len(faces):
                    continue
                th, tw = sub.shape[:2]
                b = faces.xyxy
                cut = ((b[:, 0] < edge) & (x0 > 0)) | ((b[:, 1] < edge) & (y0 > 0)) \
                    | ((b[:, 2] > tw - edge) & (x0 + tw < w)) | ((b[:, 3] > th - edge) & (y0 + th < h))
                parts.append(faces[~cut].transformed(offset=(x0, y0)).with_meta(image_size=(w, h)))
        f = self.tile / max(h, w)
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        whole = self.detector(small).transformed((w / small.shape[1], h / small.shape[0]))
        parts.append(whole.with_meta(image_size=(w, h)))
        merged = Faces.merge(parts).nms(self.nms_threshold)
        return merged.with_boxes(ops.clip_boxes(merged.xyxy, w, h)).with_meta(image_size=(w, h))

    __call__ = detect

    def describe(self) -> dict[str, Any]:
        return {**describe(self.detector), "tile": self.tile, "overlap": self.overlap}

    def __repr__(self) -> str:
        return f"Tiled({self.detector!r}, tile={self.tile}, overlap={self.overlap})"
