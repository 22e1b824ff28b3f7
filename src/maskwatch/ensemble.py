"""Several face detectors as one: the union of their faces, merged by NMS.

General face detectors and maskwatch's own detector fail on different faces: on the fmd validation
photos YuNet misses many masked faces, maskwatch's detector more unmasked ones (docs/detection.md).
Their union finds more faces than either (face recall 0.883 vs 0.802 for YuNet alone,
benchmarks/bench_detect.py) and is maskwatch's default detector (``yunet+maskwatch``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from . import ops
from .detectors import FaceDetector
from .faces import Faces
from .imageio import as_rgb_array


def merge_faces(parts: list[Faces], nms_threshold: float, box_voting: bool = False) -> Faces:
    """Faces of one image found by several passes (detectors, tiles), duplicates merged by NMS; order
    kept. Optional fields (landmarks, probs) survive only where every part has them.

    ``box_voting``: each surviving face's box becomes the score-weighted mean of its own box and the
    boxes NMS merged into it (IoU above ``nms_threshold``) — box voting, the simplest form of weighted
    box fusion; its score and other fields stay those of the surviving face.
    """
    faces = Faces.concatenate(parts)
    if len(faces) > 1:
        keep = np.sort(ops.nms(faces.xyxy, faces.det_score, nms_threshold))
        kept = faces[keep]
        if box_voting:
            iou = ops.box_iou(kept.xyxy, faces.xyxy)
            iou[np.arange(len(keep)), keep] = 1.0  # a face always votes for itself
            w = np.where(iou > nms_threshold, faces.det_score[None, :].astype(np.float64), 0.0) + 1e-12
            kept = replace(kept, xyxy=((w @ faces.xyxy.astype(np.float64)) / w.sum(1, keepdims=True)).astype(np.float32))
        faces = kept
    return faces


class EnsembleDetector(FaceDetector):
    """Runs every detector on the image and keeps the union of their faces, merged by NMS.

    Args:
        detectors: the members, each with its own scale and score threshold.
        weights: multiplies each member's face scores before NMS (which face of an overlapping pair
            survives; also the ranking for AP); default 1 for every member.
        nms_threshold: IoU above which two faces are the same face.
        box_voting: a face several members found gets the score-weighted mean of their boxes
            (`merge_faces`) instead of the best-scored member's box.
    """

    def __init__(self, detectors: Sequence[FaceDetector], weights: Sequence[float] | None = None,
                 nms_threshold: float = 0.5, name: str | None = None, box_voting: bool = False):
        if not detectors:
            raise ValueError("an ensemble needs at least one detector")
        self.detectors = list(detectors)
        self.weights = [1.0] * len(self.detectors) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.detectors):
            raise ValueError(f"{len(self.weights)} weights for {len(self.detectors)} detectors")
        self.nms_threshold = float(nms_threshold)
        self.box_voting = bool(box_voting)
        self.name = name or "+".join(d.name for d in self.detectors)
        self.scale = self.detectors[0].scale
        self.score_threshold = min(d.score_threshold for d in self.detectors)
        self.max_side, self.min_side = self.detectors[0].max_side, self.detectors[0].min_side

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        parts = []
        for det, weight in zip(self.detectors, self.weights):
            f = det.detect(image)
            # members' class probabilities and landmarks are dropped unless every member has them
            parts.append(Faces(xyxy=f.xyxy, det_score=np.clip(f.det_score * weight, 0, 1), landmarks=f.landmarks,
                               probs=f.probs))
        faces = merge_faces(parts, self.nms_threshold, self.box_voting)
        return Faces(xyxy=faces.xyxy, det_score=faces.det_score, landmarks=faces.landmarks, probs=faces.probs,
                     image_size=(w, h))

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"EnsembleDetector({self.detectors!r}, weights={self.weights}, nms_threshold={self.nms_threshold}, "
                f"box_voting={self.box_voting})")
