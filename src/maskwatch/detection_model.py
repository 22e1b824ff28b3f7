"""maskwatch's own single-pass face + mask detector (ONNX, torch-free at inference).

A MobileNetV2 (ImageNet) trunk with a light top-down feature pyramid and a CenterNet-style
anchor-free head at stride 4 — small faces are the norm in crowd photos (half the faces of the
fmd dataset are under 23 px). The network outputs, per stride-4 cell:

* ``heat`` (1, 1, h, w): face-centre probability, already reduced to local 3x3 maxima in the graph;
* ``cls`` (1, C, h, w): mask-class probabilities (softmax, ``spec.labels`` order);
* ``box`` (1, 4, h, w): ``dx, dy`` centre offset within the cell and ``log(w / stride)``,
  ``log(h / stride)``.

So every face comes with a box, a face score and class probabilities: the detector works alone (one
pass), or as a plain face detector in front of the mask classifier (two passes). Everything the
model needs (labels, mean/std, stride, default scale) is in its ONNX metadata (`ModelSpec`).
Training lives in `maskwatch.train.detector` (torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import ops, registry
from .errors import ModelSpecError
from .faces import Faces
from .imageio import as_rgb_array
from .labels import LABELS
from .spec import ModelSpec
from .detectors import FaceDetector

#: Input sides are padded to a multiple of this (the trunk's largest stride).
PAD_MULTIPLE = 32


def preprocess(image: np.ndarray, scale: float, mean: tuple[float, ...], std: tuple[float, ...],
               max_side: int = 4096) -> tuple[np.ndarray, float]:
    """RGB uint8 image -> normalised NCHW float32 input padded to a multiple of 32, and the scale used."""
    h, w = image.shape[:2]
    scale = min(scale, max_side / max(h, w))
    if abs(scale - 1.0) > 1e-6:
        interp = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    x = ops.normalize(image[None], mean, std)
    ph = -x.shape[2] % PAD_MULTIPLE
    pw = -x.shape[3] % PAD_MULTIPLE
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)))  # 0 = the mean colour after normalisation
    return np.ascontiguousarray(x), scale


def decode(heat: np.ndarray, cls: np.ndarray, box: np.ndarray, stride: int, score_threshold: float,
           nms_threshold: float = 0.5, top_k: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network outputs of one image -> ``(xyxy, scores, probs)`` in input pixels."""
    hm = heat[0, 0]
    ys, xs = np.nonzero(hm >= score_threshold)
    scores = hm[ys, xs]
    if len(scores) > top_k:
        keep = np.argsort(-scores, kind="stable")[:top_k]
        ys, xs, scores = ys[keep], xs[keep], scores[keep]
    b = box[0][:, ys, xs]
    cx, cy = (xs + b[0]) * stride, (ys + b[1]) * stride
    w, h = np.exp(np.clip(b[2], -4, 8)) * stride, np.exp(np.clip(b[3], -4, 8)) * stride
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)
    probs = cls[0][:, ys, xs].T.astype(np.float32)
    if nms_threshold < 1 and len(scores) > 1:
        keep = ops.nms(xyxy, scores, nms_threshold)
        xyxy, scores, probs = xyxy[keep], scores[keep], probs[keep]
    return xyxy.reshape(-1, 4), scores.astype(np.float32), probs.reshape(-1, cls.shape[1])


class MaskwatchDetector(FaceDetector):
    """maskwatch's trained face + mask detector: `Faces` with boxes, scores and class probabilities.

    Args:
        scale: input scale (default: the one stored with the model, chosen on validation data).
        score_threshold: minimum face-centre probability.
        nms_threshold: IoU above which overlapping faces are merged (1 disables NMS).
        model_path: an exported ONNX file (default: the model shipped with maskwatch).
    """

    name = "maskwatch"

    def __init__(self, scale: float | None = None, score_threshold: float = 0.3, nms_threshold: float = 0.5,
                 model_path: str | Path | None = None, threads: int | None = None, **kw: Any):
        from .classifier import onnx_session

        path = Path(model_path) if model_path else registry.resolve("maskwatch-detector")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: detector model not found")
        self.path = path
        self.session = onnx_session(path, threads)
        self.spec = ModelSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map, source=str(path))
        if self.spec.kind != "detector":
            raise ModelSpecError(f"{path}: spec kind is {self.spec.kind!r}, expected 'detector'")
        unknown = [label for label in self.spec.labels if label not in LABELS]
        if unknown:
            raise ModelSpecError(f"{path}: labels {unknown} are not maskwatch labels {LABELS}")
        self._columns = [LABELS.index(label) for label in self.spec.labels]
        self.stride = int(self.spec.extra.get("stride", 4))
        super().__init__(scale=scale or float(self.spec.extra.get("scale", 1.0)), score_threshold=score_threshold, **kw)
        self.nms_threshold = float(nms_threshold)
        self._input = self.session.get_inputs()[0].name

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs ``(heat, cls, box)`` for a preprocessed input."""
        heat, cls, box = self.session.run(["heat", "cls", "box"], {self._input: x})
        return heat, cls, box

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        x, scale = preprocess(image, self.input_scale(h, w), self.spec.mean, self.spec.std, self.max_side)
        xyxy, scores, probs = decode(*self.forward(x), self.stride, self.score_threshold, self.nms_threshold)
        xyxy = ops.clip_boxes(xyxy / np.float32(scale), w, h)
        keep = ops.box_area(xyxy) > 0
        full = np.zeros((int(keep.sum()), len(LABELS)), np.float32)
        full[:, self._columns] = probs[keep]
        return Faces(xyxy=xyxy[keep], det_score=scores[keep], probs=full, image_size=(w, h))

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"MaskwatchDetector({self.path.name}, scale={self.scale}, score_threshold={self.score_threshold})"
