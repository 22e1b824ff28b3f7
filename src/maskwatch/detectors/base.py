"""The detector contract and the resizing base class.

A detector is any callable ``image -> Faces``: it takes an RGB uint8 ``(H, W, 3)`` image and returns
`Faces` in that image's pixel coordinates (`Detector`). Wrappers (`calibration`, `tiling`,
`ensemble`) take any such callable, the way supervision's ``InferenceSlicer`` takes a callback.

`FaceDetector` is the base class of the network detectors: it resizes the image by ``scale``
(raised for small images up to ``min_side``, lowered for large ones down to ``max_side``), calls
the subclass's `FaceDetector._detect` on the resized image, maps the faces back, clips them to the
image and drops empty boxes. `describe` reports any detector's settings (wrappers add theirs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from .. import ops
from ..faces import Faces
from ..imageio import as_rgb_array
from ..labels import LABELS
from ..spec import ModelSpec

#: The contract: an RGB uint8 image in, its faces out.
Detector = Callable[[np.ndarray], Faces]


def describe(detector: Detector) -> dict[str, Any]:
    """``{"name": ..., settings...}`` of any detector callable (wrappers add their own settings)."""
    own = getattr(detector, "describe", None)
    if callable(own):
        return own()
    return {"name": getattr(detector, "name", getattr(detector, "__name__", type(detector).__name__))}


class FaceDetector(ABC):
    """A network face detector run on the image resized by `input_scale`.

    Args:
        scale: input scale; > 1 finds smaller faces at a higher cost.
        score_threshold: least face score kept.
        max_side: the resized image's longer side is at most this.
        min_side: small images are upscaled until their longer side is this (0: never).
        max_upscale: ... but by at most this factor (0: no limit). A close-up of one face, blown up
            far beyond the face sizes a network learnt, is where detectors find faces in its parts.
    """

    name: str = "detector"

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.5, max_side: int = 4096, min_side: int = 0,
                 max_upscale: float = 0.0):
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)
        self.min_side = int(min_side)
        self.max_upscale = float(max_upscale)

    def input_scale(self, height: int, width: int) -> float:
        """The scale applied to an image of this size: ``scale``, raised so that the longer side
        reaches ``min_side`` (by at most ``max_upscale``), lowered so that it stays within ``max_side``."""
        long_side = max(height, width)
        up = self.min_side / long_side
        if self.max_upscale > 0:
            up = min(up, self.max_upscale)
        return min(max(self.scale, up), self.max_side / long_side)

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        scale = self.input_scale(h, w)
        resized = ops.resize_by(image, scale)
        faces = self._detect(resized)
        if len(faces) and resized is not image:
            faces = self._to_input(faces, image, resized, scale)
        xyxy = ops.clip_boxes(faces.xyxy, w, h)
        keep = ops.box_area(xyxy) > 0
        return faces.with_boxes(xyxy)[keep].with_meta(image_size=(w, h))

    __call__ = detect

    @abstractmethod
    def _detect(self, image: np.ndarray) -> Faces:
        """Faces of an RGB image already resized to detection scale, in its own pixels."""

    def _to_input(self, faces: Faces, image: np.ndarray, resized: np.ndarray, scale: float) -> Faces:
        """Faces found in ``resized`` in the pixels of ``image`` (each axis by its own factor)."""
        return faces.transformed((image.shape[1] / resized.shape[1], image.shape[0] / resized.shape[0]))

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "scale": self.scale, "min_side": self.min_side,
               "score_threshold": self.score_threshold}
        if self.max_upscale > 0:
            out["max_upscale"] = self.max_upscale
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(scale={self.scale}, min_side={self.min_side}, "
                f"score_threshold={self.score_threshold})")


class LabelingDetector(FaceDetector):
    """Base of the one-pass detectors whose network labels the masks too (`maskwatch.detectors.rfb`,
    `maskwatch.detectors.yunetmask`): the model's spec, the NMS threshold, and the network's label
    columns (the spec's order) placed onto `maskwatch.labels.LABELS`.

    Args:
        spec: the model's spec (labels in its column order).
        score_threshold: minimum face score.
        nms_threshold: IoU above which overlapping faces are one face (1 disables NMS).
    """

    def __init__(self, spec: ModelSpec, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 min_side: int = 0, **kw: Any):
        self.spec = spec
        self.nms_threshold = float(nms_threshold)
        self._columns = [LABELS.index(label) for label in spec.labels]
        super().__init__(score_threshold=score_threshold, min_side=min_side, **kw)

    def _faces(self, xyxy: np.ndarray, scores: np.ndarray, probs: np.ndarray) -> Faces:
        """`Faces` of decoded boxes, face scores and class probabilities in the spec's label order."""
        full = np.zeros((len(scores), len(LABELS)), np.float32)
        full[:, self._columns] = probs
        return Faces(xyxy=xyxy, det_score=scores, probs=full)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "nms_threshold": self.nms_threshold}
