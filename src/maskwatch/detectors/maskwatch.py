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

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from .. import ops
from .. import registry as model_files
from ..faces import Faces
from ..labels import LABELS
from ..onnxmodel import OnnxModel
from ..spec import ModelSpec
from .base import FaceDetector
from .registry import register

#: Input sides are padded to a multiple of this (the trunk's largest stride).
PAD_MULTIPLE = 32


def pad_normalize(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """RGB uint8 image at detection scale -> normalised NCHW float32 input padded to a multiple of 32."""
    x = ops.normalize(image[None], mean, std)
    ph = -x.shape[2] % PAD_MULTIPLE
    pw = -x.shape[3] % PAD_MULTIPLE
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)))  # 0 = the mean colour after normalisation
    return np.ascontiguousarray(x)


def preprocess(image: np.ndarray, scale: float, mean: tuple[float, ...], std: tuple[float, ...],
               max_side: int = 4096) -> tuple[np.ndarray, float]:
    """RGB uint8 image -> normalised NCHW float32 input padded to a multiple of 32, and the scale used."""
    h, w = image.shape[:2]
    scale = min(scale, max_side / max(h, w))
    return pad_normalize(ops.resize_by(image, scale), mean, std), scale


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


class CenterNetDetector(FaceDetector):
    """Decoding of maskwatch's CenterNet-style network, whatever runs it (`forward`): ONNX Runtime in
    `MaskwatchDetector`, PyTorch during training (`maskwatch.train.detector.loop.TorchDetector`).

    Faces come with boxes, face scores and class probabilities (`LABELS` order)."""

    name = "maskwatch"

    def __init__(self, spec: ModelSpec, scale: float | None = None, score_threshold: float = 0.3,
                 nms_threshold: float = 0.5, columns: list[int] | None = None, **kw: Any):
        self.spec = spec
        self.stride = int(spec.extra.get("stride", 4))
        self.nms_threshold = float(nms_threshold)
        self._columns = columns if columns is not None else [LABELS.index(label) for label in spec.labels]
        super().__init__(scale=scale or float(spec.extra.get("scale", 1.0)), score_threshold=score_threshold, **kw)

    @abstractmethod
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs ``(heat, cls, box)`` for a preprocessed input."""

    def _detect(self, image: np.ndarray) -> Faces:
        x = pad_normalize(image, self.spec.mean, self.spec.std)
        xyxy, scores, probs = decode(*self.forward(x), self.stride, self.score_threshold, self.nms_threshold)
        full = np.zeros((len(scores), len(LABELS)), np.float32)
        full[:, self._columns] = probs
        return Faces(xyxy=xyxy, det_score=scores, probs=full)

    def _to_input(self, faces: Faces, image: np.ndarray, resized: np.ndarray, scale: float) -> Faces:
        # the network saw the image resized by one factor (then padded): undo that factor on both axes
        return faces.with_boxes(faces.xyxy / np.float32(scale))


@register("maskwatch", defaults={"scale": 1.0, "min_side": 640, "score_threshold": 0.3},
          summary="maskwatch's earlier face + mask detector (CenterNet; yunet+maskwatch's second member)",
          arch="mobilenet_v2-centernet")
class MaskwatchDetector(CenterNetDetector):
    """maskwatch's trained face + mask detector: `Faces` with boxes, scores and class probabilities.

    Args:
        scale: input scale (default: the one stored with the model, chosen on validation data).
        score_threshold: minimum face-centre probability.
        nms_threshold: IoU above which overlapping faces are merged (1 disables NMS).
        model_path: an exported ONNX file (default: the model shipped with maskwatch).
    """

    def __init__(self, scale: float | None = None, score_threshold: float = 0.3, nms_threshold: float = 0.5,
                 model_path: str | Path | None = None, threads: int | None = None, **kw: Any):
        self.model = OnnxModel(Path(model_path) if model_path else model_files.resolve("maskwatch-detector"),
                               "detector", threads)
        self.path, self.session = self.model.path, self.model.session
        super().__init__(self.model.spec, scale, score_threshold, nms_threshold, self.model.columns, **kw)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        heat, cls, box = self.model.run(["heat", "cls", "box"], x)
        return heat, cls, box

    def __repr__(self) -> str:
        return f"MaskwatchDetector({self.path.name}, scale={self.scale}, score_threshold={self.score_threshold})"
