"""Several face detectors as one: the union of their faces, merged by NMS.

General face detectors and maskwatch's own detector fail on different faces: on the fmd validation
photos YuNet misses many masked faces, maskwatch's detector more unmasked ones (docs/detection.md).
Together they find more faces than either (face recall 0.919 vs 0.821 for YuNet alone,
benchmarks/bench_detect.py) and are maskwatch's default detector (``yunet+maskwatch``): each member's
faces where it is sure, or where the other member agrees (`agreed`), merged by NMS (`merge_faces`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from . import ops
from .detectors import FaceDetector
from .faces import Faces
from .imageio import as_rgb_array


def merge_faces(parts: list[Faces], nms_threshold: float, box_voting: bool = False,
                vote_threshold: float | None = None) -> Faces:
    """Faces of one image found by several passes (detectors, tiles), duplicates merged by NMS; order
    kept. Optional fields (landmarks, probs) survive only where every part has them.

    ``box_voting``: each surviving face's box becomes the score-weighted mean of its own box and the
    boxes that overlap it with IoU above ``vote_threshold`` (default ``nms_threshold``) — box voting,
    the simplest form of weighted box fusion; its score and other fields stay those of the surviving
    face. A vote threshold above the NMS threshold suppresses loose second boxes without letting them
    pull the kept box.
    """
    vote_threshold = nms_threshold if vote_threshold is None else vote_threshold
    faces = Faces.concatenate(parts)
    if len(faces) > 1:
        keep = np.sort(ops.nms(faces.xyxy, faces.det_score, nms_threshold))
        kept = faces[keep]
        if box_voting:
            iou = ops.box_iou(kept.xyxy, faces.xyxy)
            iou[np.arange(len(keep)), keep] = 1.0  # a face always votes for itself
            w = np.where(iou > vote_threshold, faces.det_score[None, :].astype(np.float64), 0.0) + 1e-12
            kept = replace(kept, xyxy=((w @ faces.xyxy.astype(np.float64)) / w.sum(1, keepdims=True)).astype(np.float32))
        faces = kept
    return faces


def agreed(parts: list[Faces], solo_thresholds: Sequence[float], agree_iou: float) -> list[Faces]:
    """Each part's faces that stand alone (score at least its ``solo_thresholds`` entry) or that another
    part also finds (a face of it overlapping with IoU at least ``agree_iou``, at any score)."""
    out = []
    for i, (f, solo) in enumerate(zip(parts, solo_thresholds)):
        keep = f.det_score >= solo
        others = [g.xyxy for j, g in enumerate(parts) if j != i and len(g)]
        if len(f) and others and not keep.all():
            keep |= ops.box_iou(f.xyxy, np.concatenate(others)).max(1) >= agree_iou
        out.append(f[keep])
    return out


class EnsembleDetector(FaceDetector):
    """Runs every detector on the image and keeps the union of their faces, merged by NMS.

    Args:
        detectors: the members, each with its own scale and score threshold.
        weights: multiplies each member's face scores before NMS (which face of an overlapping pair
            survives; also the ranking for AP); default 1 for every member.
        nms_threshold: IoU above which two faces are the same face.
        box_voting: a face several members found gets the score-weighted mean of their boxes
            (`merge_faces`) instead of the best-scored member's box.
        vote_threshold: IoU above which a box takes part in box voting (default ``nms_threshold``).
        solo_thresholds: per member, the score a face needs to be kept on its own word; a face below
            it (down to the member's own score threshold) is kept only where another member finds a
            face too (`agreed`, IoU at least ``agree_iou``). Default: every face a member returns.
        agree_iou: IoU at which two members' faces are taken for the same face by ``solo_thresholds``.
    """

    def __init__(self, detectors: Sequence[FaceDetector], weights: Sequence[float] | None = None,
                 nms_threshold: float = 0.5, name: str | None = None, box_voting: bool = False,
                 vote_threshold: float | None = None, solo_thresholds: Sequence[float] | None = None,
                 agree_iou: float = 0.3):
        if not detectors:
            raise ValueError("an ensemble needs at least one detector")
        self.detectors = list(detectors)
        self.weights = [1.0] * len(self.detectors) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.detectors):
            raise ValueError(f"{len(self.weights)} weights for {len(self.detectors)} detectors")
        self.nms_threshold = float(nms_threshold)
        self.box_voting = bool(box_voting)
        self.vote_threshold = self.nms_threshold if vote_threshold is None else float(vote_threshold)
        self.solo_thresholds = None if solo_thresholds is None else [float(t) for t in solo_thresholds]
        if self.solo_thresholds is not None and len(self.solo_thresholds) != len(self.detectors):
            raise ValueError(f"{len(self.solo_thresholds)} solo thresholds for {len(self.detectors)} detectors")
        self.agree_iou = float(agree_iou)
        self.name = name or "+".join(d.name for d in self.detectors)
        self.scale = self.detectors[0].scale
        # the lowest score a face needs on its own
        self.score_threshold = min(self.solo_thresholds or [d.score_threshold for d in self.detectors])
        self.max_side, self.min_side = self.detectors[0].max_side, self.detectors[0].min_side

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        found = [det.detect(image) for det in self.detectors]
        if self.solo_thresholds is not None:
            found = agreed(found, self.solo_thresholds, self.agree_iou)
        # members' class probabilities and landmarks are dropped unless every member has them
        parts = [Faces(xyxy=f.xyxy, det_score=np.clip(f.det_score * weight, 0, 1), landmarks=f.landmarks, probs=f.probs)
                 for f, weight in zip(found, self.weights)]
        faces = merge_faces(parts, self.nms_threshold, self.box_voting, self.vote_threshold)
        return Faces(xyxy=faces.xyxy, det_score=faces.det_score, landmarks=faces.landmarks, probs=faces.probs,
                     image_size=(w, h))

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"EnsembleDetector({self.detectors!r}, weights={self.weights}, nms_threshold={self.nms_threshold}, "
                f"box_voting={self.box_voting}, vote_threshold={self.vote_threshold}, solo_thresholds={self.solo_thresholds}, "
                f"agree_iou={self.agree_iou})")
