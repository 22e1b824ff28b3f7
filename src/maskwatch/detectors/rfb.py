"""maskwatch's single-pass face + mask detector: an SSD after Ultra-Light-Fast-Generic-Face-Detector-1MB
(RFB-640), fine-tuned for three mask classes (`maskwatch.train.rfb`). Priors, box coding and decoding
are NumPy only; training uses the same functions, so training and inference agree.

The network has four levels at strides 8, 16, 32 and 64 and square priors of `MIN_BOXES` pixels per
level. For an input of ``W x H`` pixels it outputs, for each prior in the order (level, row, column, size):

* ``scores`` (1, P, 1 + C): softmax over background + the spec's labels;
* ``locs`` (1, P, 4): ``(dx, dy, dw, dh)`` offsets of the box from its prior (SSD encoding with
  variances `CENTER_VARIANCE` / `SIZE_VARIANCE`).

A prior of level ``k`` in row ``j``, column ``i`` is centred at ``((i + 0.5) / fw, (j + 0.5) / fh)``
of the input (``fw = ceil(W / stride)``), the convention of the upstream project. A face's score is
``1 - p(background)``; its class probabilities are the labels' scores renormalised to sum to 1.
Boxes are learnt in fmd's annotation style, so no calibration follows.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import ops
from .. import registry as model_files
from ..errors import ModelSpecError
from ..faces import Faces
from ..litertmodel import open_model
from .base import LabelingDetector
from .registry import register

#: The ``arch`` of an RFB detector's spec.
ARCH = "ultralight-rfb-ssd"
STRIDES = (8, 16, 32, 64)
MIN_BOXES = ((10.0, 16.0, 24.0), (32.0, 48.0), (64.0, 96.0), (128.0, 192.0, 256.0))
PRIORS_PER_CELL = tuple(len(b) for b in MIN_BOXES)
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
#: Input normalisation of the upstream network, ``(x - 127) / 128``, as `maskwatch.ops.normalize`'s mean / std.
MEAN = (127 / 255,) * 3
#: A face half inside a better-scored face (or around it) is a part of that face, not another one
#: (`maskwatch.ops.suppress_contained`): on close-up portraits the network also boxes the masked lower
#: half or a shifted copy of the face; crowd faces are hardly ever nested. Measured on the validation
#: photos (version 1, score 0.15): 0.5 instead of 0.7 takes false faces per close-up from 0.39 to 0.24 and
#: face recall on fmd from 0.895 to 0.892 (at score 0.3: 0.17 -> 0.10, recall 0.862 -> 0.860).
CONTAIN_THRESHOLD = 0.5
STD = (128 / 255,) * 3
#: The model file of each runtime (`maskwatch.registry` names): ONNX Runtime runs the shipped file,
#: the LiteRT interpreter the conversions ``maskwatch export default --format tflite`` writes.
MODEL_FILES = {"onnx": "maskwatch-rfb", "tflite": "maskwatch-rfb-tflite", "tflite-int8": "maskwatch-rfb-tflite-int8"}


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
           nms_threshold: float = 0.4, top_k: int = 750, contain_threshold: float | None = CONTAIN_THRESHOLD
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    if contain_threshold is not None and len(score) > 1:
        keep = ops.suppress_contained(xyxy, score, contain_threshold)
        xyxy, score, probs = xyxy[keep], score[keep], probs[keep]
    return xyxy.astype(np.float32).reshape(-1, 4), score.astype(np.float32), probs.astype(np.float32)



def normalize(images: np.ndarray, layout: str = "NCHW") -> np.ndarray:
    """RGB uint8 (N, H, W, 3) -> the network input: float32 NCHW (ONNX) or NHWC (LiteRT), ``(x - 127) / 128``."""
    return ops.normalize(images, MEAN, STD, layout)


class RFBDecoder(LabelingDetector):
    """Decoding of the RFB network, whatever runs it (`forward`): ONNX Runtime or the LiteRT interpreter
    in `RFBMaskDetector`, PyTorch during training (`maskwatch.train.rfb.loop.TorchRFB`).

    Args:
        spec: the model's spec (labels in its column order).
        score_threshold: minimum face score, ``1 - p(background)``.
        nms_threshold: IoU above which overlapping faces are one face (1 disables NMS).
    """

    name = "rfb"
    #: the input layout `forward` takes
    layout = "NCHW"

    @abstractmethod
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs ``(scores, locs)`` for a normalised input in `layout`."""

    def _detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        return self._faces(*decode(*self.forward(normalize(image[None], self.layout)), h, w, self.score_threshold,
                                   self.nms_threshold))


#: defaults measured on the validation photos (benchmarks/bench_detect.py): upscaling to 640 px beats 512
#: and 800; upscaling by at most 2x leaves every fmd validation photo as it was (350-600 px) and stops
#: blowing up close-ups (100 px fm12k faces became 640 px, beyond the 256 px of the largest priors).
#: Score 0.3: 0.15 finds a few more crowd faces (version 2, one pass: fmd mAP@0.5 0.689 vs 0.678, face recall
#: 0.889 vs 0.857) but also 0.20 false faces per close-up instead of 0.07, and the badge on the astronaut's
#: suit (score 0.20) in examples/three_ways.jpg. Video keeps 0.5 (`maskwatch.presets`).
@register("rfb", defaults={"scale": 1.0, "min_side": 640, "max_upscale": 2.0, "score_threshold": 0.3},
          summary="maskwatch's single-pass face + mask detector (Ultra-Light RFB SSD fine-tuned; in the package)",
          labels_masks=True, runtimes=tuple(MODEL_FILES), arch=ARCH)
class RFBMaskDetector(RFBDecoder):
    """maskwatch's single-pass face + mask detector (ONNX): `Faces` with boxes, face scores and class
    probabilities in one network pass.

    Args:
        scale: input scale.
        min_side: small photos are upscaled until their longer side is this (the registry's measured
            default, 640, is also the validation setting in the model's spec) ...
        max_upscale: ... by at most this factor (registry default 2).
        score_threshold: minimum face score, ``1 - p(background)`` (registry default 0.3).
        nms_threshold: IoU above which overlapping faces are one face (1 disables NMS).
        model_path: an exported ONNX or LiteRT (``.tflite``) file (default: the ``runtime``'s file).
        runtime: ``"onnx"`` (ONNX Runtime on the model shipped with maskwatch), ``"tflite"`` or
            ``"tflite-int8"`` (the LiteRT interpreter on the float32 / int8 conversion that
            ``maskwatch export default --format tflite`` wrote into the model cache or ``MASKWATCH_MODELS``).
    """

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 min_side: int = 0, model_path: str | Path | None = None, threads: int | None = None,
                 runtime: str = "onnx", **kw: Any):
        if runtime not in MODEL_FILES:
            raise ValueError(f"runtime must be one of {list(MODEL_FILES)}, not {runtime!r}")
        self.model = open_model(Path(model_path) if model_path else model_files.resolve(MODEL_FILES[runtime]),
                                "detector", threads)
        self.path, self.layout = self.model.path, self.model.layout
        if self.model.spec.arch != ARCH:
            raise ModelSpecError(f"{self.path}: spec arch is {self.model.spec.arch!r}, expected {ARCH!r}")
        super().__init__(self.model.spec, score_threshold, nms_threshold, min_side, scale=scale, **kw)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, locs = self.model.run(["scores", "locs"], x)
        return scores, locs

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.path.name}

    def __repr__(self) -> str:
        return (f"RFBMaskDetector({self.path.name}, scale={self.scale}, min_side={self.min_side}, "
                f"score_threshold={self.score_threshold})")
