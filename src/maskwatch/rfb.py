"""Priors and decoding of the RFB single-pass face + mask detector, torch-free (NumPy only).

The network (`maskwatch.train.rfb.model`, after Ultra-Light-Fast-Generic-Face-Detector-1MB) is an
SSD with four levels at strides 8, 16, 32 and 64 and square priors of `MIN_BOXES` pixels per level.
For an input of ``W x H`` pixels it outputs, for each prior in the order (level, row, column, size):

* ``scores`` (1, P, 1 + C): softmax over background + the spec's labels;
* ``locs`` (1, P, 4): ``(dx, dy, dw, dh)`` offsets of the box from its prior (SSD encoding with
  variances `CENTER_VARIANCE` / `SIZE_VARIANCE`).

A prior of level ``k`` in row ``j``, column ``i`` is centred at ``((i + 0.5) / fw, (j + 0.5) / fh)``
of the input (``fw = ceil(W / stride)``), the convention of the upstream project. Its face score is
``1 - p(background)``; the class probabilities are the labels' scores renormalised to sum to 1.
The same functions build the training targets (`encode`), so training and inference agree.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import ops, registry
from .detectors import FaceDetector
from .errors import ModelSpecError
from .faces import Faces
from .imageio import as_rgb_array
from .labels import LABELS
from .spec import ModelSpec

STRIDES = (8, 16, 32, 64)
MIN_BOXES = ((10.0, 16.0, 24.0), (32.0, 48.0), (64.0, 96.0), (128.0, 192.0, 256.0))
PRIORS_PER_CELL = tuple(len(b) for b in MIN_BOXES)
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
#: Input normalisation of the upstream network, ``(x - 127) / 128``, as `maskwatch.ops.normalize`'s mean / std.
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3


def feature_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """``(fh, fw)`` of each level for an input of this size (every stride-2 layer rounds up)."""
    out = []
    h, w = height, width
    for k in range(len(STRIDES)):
        steps = 3 if k == 0 else 1  # stride 8 = three halvings, then one more per level
        for _ in range(steps):
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        out.append((h, w))
    return out


@lru_cache(maxsize=16)
def priors(height: int, width: int) -> np.ndarray:
    """(P, 4) priors as ``(cx, cy, w, h)`` fractions of the input, clipped to [0, 1]."""
    rows = []
    for (fh, fw), sizes in zip(feature_sizes(height, width), MIN_BOXES):
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        k = len(sizes)
        cx = np.repeat(xs.reshape(-1), k)
        cy = np.repeat(ys.reshape(-1), k)
        pw = np.tile(np.asarray(sizes) / width, fh * fw)
        ph = np.tile(np.asarray(sizes) / height, fh * fw)
        rows.append(np.stack([cx, cy, pw, ph], 1))
    out = np.clip(np.concatenate(rows).astype(np.float32), 0.0, 1.0)
    out.setflags(write=False)
    return out


def to_corners(center: np.ndarray) -> np.ndarray:
    return np.concatenate([center[..., :2] - center[..., 2:] / 2, center[..., :2] + center[..., 2:] / 2], -1)


def to_center(corners: np.ndarray) -> np.ndarray:
    return np.concatenate([(corners[..., :2] + corners[..., 2:]) / 2, corners[..., 2:] - corners[..., :2]], -1)


def decode_boxes(locs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Offsets (P, 4) -> corner boxes (P, 4) in input fractions."""
    centre = prior[:, :2] + locs[:, :2] * CENTER_VARIANCE * prior[:, 2:]
    size = prior[:, 2:] * np.exp(np.clip(locs[:, 2:] * SIZE_VARIANCE, -10, 10))
    return to_corners(np.concatenate([centre, size], 1))


def encode(boxes: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Corner boxes (P, 4) in input fractions -> the offsets `decode_boxes` turns back into them."""
    c = to_center(boxes)
    return np.concatenate([(c[:, :2] - prior[:, :2]) / prior[:, 2:] / CENTER_VARIANCE,
                           np.log(np.maximum(c[:, 2:], 1e-6) / prior[:, 2:]) / SIZE_VARIANCE], 1).astype(np.float32)


def decode(scores: np.ndarray, locs: np.ndarray, height: int, width: int, score_threshold: float,
           nms_threshold: float = 0.4, top_k: int = 750) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network outputs of one image -> ``(xyxy in input pixels, face scores, class probabilities)``.

    NMS runs over faces of every class together (one face has one label)."""
    s = scores[0]
    face = 1.0 - s[:, 0]
    idx = np.nonzero(face >= score_threshold)[0]
    if len(idx) > top_k:
        idx = idx[np.argsort(-face[idx], kind="stable")[:top_k]]
    xyxy = decode_boxes(locs[0][idx], priors(height, width)[idx]) * np.float32([width, height, width, height])
    cls = s[idx, 1:]
    probs = cls / np.maximum(cls.sum(1, keepdims=True), 1e-12)
    score = face[idx]
    if nms_threshold < 1 and len(idx) > 1:
        keep = ops.nms(xyxy.astype(np.float32), score, nms_threshold)
        xyxy, score, probs = xyxy[keep], score[keep], probs[keep]
    return xyxy.astype(np.float32).reshape(-1, 4), score.astype(np.float32), probs.astype(np.float32)


def prepare(image: np.ndarray, scale: float, max_side: int = 4096) -> tuple[np.ndarray, float]:
    """RGB uint8 image -> the network input (1, 3, H, W) float32 at ``scale`` (capped so that the
    longer side stays within ``max_side``), and the scale used. Training and inference both use it."""
    h, w = image.shape[:2]
    scale = min(scale, max_side / max(h, w))
    if abs(scale - 1.0) > 1e-6:
        interp = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    return ops.normalize(image[None], MEAN, STD), scale


class RFBMaskDetector(FaceDetector):
    """maskwatch's single-pass face + mask detector (ONNX): `Faces` with boxes, face scores and
    class probabilities, in one network pass.

    Args:
        scale: input scale; small photos are upscaled to ``min_side`` (default: the model's spec).
        score_threshold: minimum face score, ``1 - p(background)``.
        nms_threshold: IoU above which overlapping faces are one face (1 disables NMS).
        model_path: an exported ONNX file (default: the model shipped with maskwatch).
    """

    name = "rfb"

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 min_side: int | None = None, model_path: str | Path | None = None, threads: int | None = None,
                 **kw: Any):
        from .classifier import onnx_session

        path = Path(model_path) if model_path else registry.resolve("maskwatch-rfb")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: detector model not found")
        self.path = path
        self.session = onnx_session(path, threads)
        self.spec = ModelSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map, source=str(path))
        if self.spec.kind != "detector" or not self.spec.extra.get("background"):
            raise ModelSpecError(f"{path}: not an RFB detector spec (kind {self.spec.kind!r})")
        unknown = [label for label in self.spec.labels if label not in LABELS]
        if unknown:
            raise ModelSpecError(f"{path}: labels {unknown} are not maskwatch labels {LABELS}")
        self._columns = [LABELS.index(label) for label in self.spec.labels]
        if min_side is None:
            min_side = int(self.spec.extra.get("min_side", 0))
        super().__init__(scale=scale, score_threshold=score_threshold, min_side=min_side, **kw)
        self.nms_threshold = float(nms_threshold)
        self._input = self.session.get_inputs()[0].name

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs ``(scores, locs)`` for a prepared input."""
        scores, locs = self.session.run(["scores", "locs"], {self._input: x})
        return scores, locs

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        x, scale = prepare(image, self.input_scale(h, w), self.max_side)
        xyxy, scores, probs = decode(*self.forward(x), x.shape[2], x.shape[3], self.score_threshold, self.nms_threshold)
        xyxy = ops.clip_boxes(xyxy / np.float32(scale), w, h)
        keep = ops.box_area(xyxy) > 0
        full = np.zeros((int(keep.sum()), len(LABELS)), np.float32)
        full[:, self._columns] = probs[keep]
        return Faces(xyxy=xyxy[keep], det_score=scores[keep], probs=full, image_size=(w, h))

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"RFBMaskDetector({self.path.name}, scale={self.scale}, min_side={self.min_side}, "
                f"score_threshold={self.score_threshold})")
