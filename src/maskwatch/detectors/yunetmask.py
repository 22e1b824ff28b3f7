"""A single-pass face + mask detector on YuNet (libfacedetection.train), the candidate beside the RFB
SSD (`maskwatch.detectors.rfb`); see `maskwatch.train.yunet`. Decoding is NumPy only and shared
by training and inference.

YuNet is anchor-free: three levels at strides 8, 16 and 32 with one point per cell, the point of
row ``j``, column ``i`` at ``(i * s, j * s)`` of the input (the upstream ``MlvlPointGenerator`` with
offset 0). The input is BGR in 0..255, padded at the bottom and right to a multiple of 32. The
inference graph outputs, per point in the order (level, row, column):

* ``scores`` (1, P): the face score ``sqrt(sigmoid(face) * sigmoid(objectness))`` (OpenCV's
  ``FaceDetectorYN`` score);
* ``probs`` (1, P, C): softmax over the spec's labels;
* ``boxes`` (1, P, 4): ``(dx, dy, log w, log h)`` in units of the stride; the centre is
  ``point + (dx, dy) * s``, the size ``exp(log w, log h) * s``.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import lru_cache

import numpy as np

from .. import ops
from ..faces import Faces
from .base import LabelingDetector
from .rfb import CONTAIN_THRESHOLD

ARCH = "yunet-mask"
STRIDES = (8, 16, 32)
PAD = 32


def padded_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // PAD) * PAD, -(-width // PAD) * PAD


@lru_cache(maxsize=16)
def points(height: int, width: int) -> np.ndarray:
    """(P, 3) ``(x, y, stride)`` of every point of a padded ``height x width`` input."""
    rows = []
    for s in STRIDES:
        ys, xs = np.meshgrid(np.arange(height // s) * s, np.arange(width // s) * s, indexing="ij")
        rows.append(np.stack([xs.reshape(-1), ys.reshape(-1), np.full(xs.size, s)], 1))
    out = np.concatenate(rows).astype(np.float32)
    out.setflags(write=False)
    return out


def decode_boxes(boxes: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """``(dx, dy, log w, log h)`` (P, 4) -> corner boxes (P, 4) in input pixels."""
    s = pts[:, 2:3]
    c = pts[:, :2] + boxes[:, :2] * s
    wh = np.exp(np.clip(boxes[:, 2:], -10, 10)) * s
    return np.concatenate([c - wh / 2, c + wh / 2], 1)


def to_input(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> the network input: BGR float32 NCHW, padded with zeros to a multiple of 32."""
    h, w = image.shape[:2]
    ph, pw = padded_size(h, w)
    x = np.zeros((1, 3, ph, pw), np.float32)
    x[0, :, :h, :w] = image[..., ::-1].transpose(2, 0, 1)
    return x


def decode(scores: np.ndarray, probs: np.ndarray, boxes: np.ndarray, height: int, width: int,
           score_threshold: float, nms_threshold: float = 0.4, top_k: int = 750,
           contain_threshold: float | None = CONTAIN_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outputs of one padded ``height x width`` input -> ``(xyxy, face scores, class probabilities)``."""
    face = scores[0]
    idx = np.nonzero(face >= score_threshold)[0]
    if len(idx) > top_k:
        idx = idx[np.argsort(-face[idx], kind="stable")[:top_k]]
    xyxy = decode_boxes(boxes[0][idx], points(height, width)[idx]).astype(np.float32)
    score, cls = face[idx], probs[0][idx]
    if nms_threshold < 1 and len(idx) > 1:
        keep = ops.nms(xyxy, score, nms_threshold)
        xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
    if contain_threshold is not None and len(score) > 1:
        keep = ops.suppress_contained(xyxy, score, contain_threshold)
        xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
    return xyxy.reshape(-1, 4), score.astype(np.float32), cls.astype(np.float32)


class YuNetMaskDecoder(LabelingDetector):
    """Decoding of the YuNet mask network, whatever runs it (`forward`)."""

    name = "yunet-mask"

    @abstractmethod
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs ``(scores, probs, boxes)`` for an input made by `to_input`."""

    def _detect(self, image: np.ndarray) -> Faces:
        x = to_input(image)
        return self._faces(*decode(*self.forward(x), x.shape[2], x.shape[3], self.score_threshold, self.nms_threshold))
