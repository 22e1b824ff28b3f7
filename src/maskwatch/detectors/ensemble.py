"""Several face detectors as one: the union of their faces, merged by NMS.

General face detectors and maskwatch's own detector fail on different faces: on the fmd validation
photos YuNet misses many masked faces, maskwatch's detector more unmasked ones (docs/detection.md).
Together they find more faces than either (face recall 0.919 vs 0.821 for YuNet alone,
benchmarks/bench_detect.py) and are maskwatch's default detector (``yunet+maskwatch``): each member's
faces where it is sure, or where the other member agrees (`agreed`), merged by NMS with box voting
(`Faces.nms`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .. import ops
from ..faces import Faces
from ..imageio import as_rgb_array
from .base import Detector, describe
from .registry import build, register


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


class Ensemble:
    """Runs every detector on the image and keeps the union of their faces, merged by NMS.

    Args:
        detectors: the members, each with its own scale and score threshold.
        weights: multiplies each member's face scores before NMS (which face of an overlapping pair
            survives; also the ranking for AP); default 1 for every member.
        nms_threshold: IoU above which two faces are the same face.
        box_voting: a face several members found gets the score-weighted mean of their boxes
            (`Faces.nms`) instead of the best-scored member's box.
        vote_threshold: IoU above which a box takes part in box voting (default ``nms_threshold``).
        solo_thresholds: per member, the score a face needs to be kept on its own word; a face below
            it (down to the member's own score threshold) is kept only where another member finds a
            face too (`agreed`, IoU at least ``agree_iou``). Default: every face a member returns.
        agree_iou: IoU at which two members' faces are taken for the same face by ``solo_thresholds``.
    """

    def __init__(self, detectors: Sequence[Detector], weights: Sequence[float] | None = None,
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
        members = [describe(d) for d in self.detectors]
        self.name = name or "+".join(m["name"] for m in members)
        # the lowest score a face needs on its own
        self.score_threshold = min(self.solo_thresholds or [m.get("score_threshold", 0.0) for m in members])

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        found = [det(image) for det in self.detectors]
        if self.solo_thresholds is not None:
            found = agreed(found, self.solo_thresholds, self.agree_iou)
        parts = [f.with_scores(np.clip(f.det_score * weight, 0, 1)).with_meta(image_size=(w, h))
                 for f, weight in zip(found, self.weights)]
        # a field (landmarks, class probabilities) that not every member found faces with is dropped
        found_any = [p for p in parts if len(p)]
        partial = [n for n in Faces.OPTIONAL_FIELDS if any(getattr(p, n) is None for p in found_any)]
        faces = Faces.merge([p.without(*partial) for p in parts])
        return faces.nms(self.nms_threshold, self.vote_threshold if self.box_voting else None)

    __call__ = detect

    def describe(self) -> dict[str, Any]:
        members = [describe(d) for d in self.detectors]
        return {"name": self.name, "scale": members[0].get("scale"), "score_threshold": self.score_threshold,
                "members": members}

    def __repr__(self) -> str:
        return (f"Ensemble({self.detectors!r}, weights={self.weights}, nms_threshold={self.nms_threshold}, "
                f"box_voting={self.box_voting}, vote_threshold={self.vote_threshold}, solo_thresholds={self.solo_thresholds}, "
                f"agree_iou={self.agree_iou})")


#: ``yunet+maskwatch``, measured on the fmd validation photos (benchmarks/bench_refinements.py):
#:
#: * ``members``: each member's settings over its measured defaults, the weight of its face scores
#:   (YuNet's run higher than ours; 0.7 ranks the merged faces best) and its ``solo`` threshold: a face
#:   scored at least that is kept on one detector's word; below it, down to the member's
#:   ``score_threshold``, only where the other detector finds a face too (IoU >= ``agree_iou``). YuNet
#:   keeps its measured 0.2 alone and sees down to 0.02; maskwatch's detector runs at its own 0.3 and
#:   needs 0.5 alone, which keeps out what it finds in clothes and badges of portraits. Against
#:   maskwatch's member at a plain 0.5: face recall 0.892 -> 0.919, face AP 0.865 -> 0.888.
#: * ``nms_threshold`` 0.2: fmd's annotated faces almost never overlap that much, while YuNet's loose
#:   second boxes on a large face do: 60% fewer false faces on close-up photos than at 0.5, same mAP.
#: * box voting from IoU 0.5 (``vote_threshold``): mAP@0.5:0.95 0.350 -> 0.391, mAP@0.5 0.672 -> 0.686;
#:   the looser boxes NMS suppresses between 0.2 and 0.5 do not vote.
YUNET_MASKWATCH = {
    "members": {"yunet": {"weight": 0.7, "score_threshold": 0.02, "solo": 0.2},
                "maskwatch": {"weight": 1.0, "solo": 0.5}},
    "nms_threshold": 0.2, "box_voting": True, "vote_threshold": 0.5, "agree_iou": 0.3,
}


@register("yunet+maskwatch", defaults=YUNET_MASKWATCH, composite=True,
          summary="YuNet + maskwatch's detector: finds the most faces")
def yunet_maskwatch(members: Mapping[str, Mapping[str, float]], nms_threshold: float, box_voting: bool,
                    vote_threshold: float, agree_iou: float, scale: float | None = None, min_side: int | None = None,
                    score_threshold: float | None = None, calibrate: bool | None = None, **kwargs: Any) -> Ensemble:
    """YuNet (boxes calibrated unless ``calibrate=False``) + maskwatch's detector, each built by
    `build` with its measured settings; ``scale`` / ``min_side`` / ``score_threshold`` given here apply
    to both (an explicit threshold makes the ensemble the plain union of both members' faces)."""
    detectors, weights, solo = [], [], []
    for name, settings in members.items():
        threshold = score_threshold if score_threshold is not None else settings.get("score_threshold")
        det = build(name, scale=scale, min_side=min_side, score_threshold=threshold,
                    calibrate=False if calibrate is False else None, **kwargs)
        detectors.append(det)
        weights.append(settings["weight"])
        solo.append(settings["solo"])
    return Ensemble(detectors, weights, nms_threshold, name="yunet+maskwatch", box_voting=box_voting,
                    vote_threshold=vote_threshold, solo_thresholds=None if score_threshold is not None else solo,
                    agree_iou=agree_iou)
