"""Detection metrics in numpy: greedy matching, precision/recall, average precision.

Matching follows pycocotools (``COCOeval.evaluateImg``): per image and class, detections are taken
best score first; each one matches the unmatched ground-truth box of highest IoU >= the
threshold, preferring boxes that are not ignored. A detection matched to an ignored box
(``difficult``, or outside the size range being evaluated) counts neither as true nor as false
positive; so does an unmatched detection whose own size is outside the range.

Two interpolations of the precision/recall curve are offered, both over the monotone precision
envelope:

* ``"voc"`` — all-point interpolation (Pascal VOC 2010+): the exact area under the envelope.
  maskwatch reports this as AP.
* ``"coco"`` — pycocotools' 101 recall points ``0, 0.01, ..., 1``; equals ``COCOeval``'s AP
  (checked in the tests), so numbers can be compared with COCO-style reports.

Everything here is pure and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ops import as_boxes, box_area, box_iou

#: IoU thresholds of COCO's mAP@0.5:0.95.
IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
#: Face-size buckets, by the square root of the box area in pixels (COCO measures area, too).
SIZE_BUCKETS: dict[str, tuple[float, float]] = {
    "all": (0.0, float("inf")),
    "tiny (<16)": (0.0, 16.0),
    "small (16-32)": (16.0, 32.0),
    "medium (32-96)": (32.0, 96.0),
    "large (>96)": (96.0, float("inf")),
}


def box_size(xyxy: np.ndarray) -> np.ndarray:
    """Size of each box: ``sqrt(width * height)`` in pixels."""
    return np.sqrt(box_area(xyxy))


@dataclass
class ImageMatch:
    """Matching of one image's detections (already sorted best score first) at several IoU thresholds."""

    scores: np.ndarray  # (D,)
    matched_gt: np.ndarray  # (T, D) int, index of the matched ground-truth box or -1
    det_ignored: np.ndarray  # (T, D) bool
    n_gt: int  # ground-truth boxes that count (not ignored)


def match_image(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    gt_boxes: np.ndarray,
    gt_ignore: np.ndarray | None = None,
    iou_thresholds: np.ndarray | list[float] = (0.5,),
    size_range: tuple[float, float] | None = None,
) -> ImageMatch:
    """Greedy pycocotools-style matching of one image and one class.

    Args:
        det_boxes, det_scores: detections ``(D, 4)`` / ``(D,)``, any order.
        gt_boxes: ground truth ``(G, 4)``.
        gt_ignore: ``(G,)`` bool; ignored boxes may absorb a detection but are not counted.
        iou_thresholds: a detection needs IoU >= threshold.
        size_range: ``(lo, hi)`` of `box_size`; ground truth outside is ignored and unmatched
            detections outside are not counted.
    Returns:
        `ImageMatch` with detections sorted by descending score (stable).
    """
    det_boxes, gt_boxes = as_boxes(det_boxes), as_boxes(gt_boxes)
    det_scores = np.asarray(det_scores, np.float64).reshape(-1)
    if len(det_scores) != len(det_boxes):
        raise ValueError(f"det_scores must have {len(det_boxes)} entries, got {len(det_scores)}")
    thresholds = np.asarray(iou_thresholds, np.float64).reshape(-1)
    ignore = np.zeros(len(gt_boxes), bool) if gt_ignore is None else np.asarray(gt_ignore, bool).copy()
    if len(ignore) != len(gt_boxes):
        raise ValueError(f"gt_ignore must have {len(gt_boxes)} entries, got {len(ignore)}")
    if size_range is not None:
        s = box_size(gt_boxes)
        ignore |= (s < size_range[0]) | (s > size_range[1])
    # pycocotools: ground truth sorted not-ignored first, detections by score (mergesort = stable)
    gt_order = np.argsort(ignore, kind="mergesort")
    det_order = np.argsort(-det_scores, kind="mergesort")
    det_boxes, det_scores = det_boxes[det_order], det_scores[det_order]
    ious = box_iou(det_boxes, gt_boxes[gt_order]).astype(np.float64)
    ig = ignore[gt_order]
    t_n, d_n, g_n = len(thresholds), len(det_boxes), len(gt_boxes)
    matched = np.full((t_n, d_n), -1, np.int64)
    det_ignored = np.zeros((t_n, d_n), bool)
    for ti, t in enumerate(thresholds):
        gt_taken = np.zeros(g_n, bool)
        for d in range(d_n):
            best, m = min(t, 1 - 1e-10), -1
            for g in range(g_n):
                if gt_taken[g]:
                    continue
                if m > -1 and not ig[m] and ig[g]:
                    break  # only ignored boxes left; keep the real match
                if ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m == -1:
                continue
            gt_taken[m] = True
            matched[ti, d] = gt_order[m]
            det_ignored[ti, d] = ig[m]
    if size_range is not None and d_n:
        s = box_size(det_boxes)
        outside = (s < size_range[0]) | (s > size_range[1])
        det_ignored |= (matched == -1) & outside[None, :]
    return ImageMatch(det_scores, matched, det_ignored, int((~ignore).sum()))


@dataclass
class PRCurve:
    """Precision/recall over detections ranked by score, at one IoU threshold."""

    recall: np.ndarray
    precision: np.ndarray
    scores: np.ndarray
    n_gt: int
    n_det: int = field(default=0)

    @property
    def max_recall(self) -> float:
        return float(self.recall[-1]) if len(self.recall) else 0.0


def pr_curve(matches: list[ImageMatch], threshold_index: int = 0) -> PRCurve:
    """Accumulate per-image matches (in image order, as pycocotools) into one PR curve."""
    n_gt = sum(m.n_gt for m in matches)
    if not matches:
        return PRCurve(np.zeros(0), np.zeros(0), np.zeros(0), 0)
    scores = np.concatenate([m.scores for m in matches])
    tp = np.concatenate([m.matched_gt[threshold_index] >= 0 for m in matches])
    ign = np.concatenate([m.det_ignored[threshold_index] for m in matches])
    order = np.argsort(-scores, kind="mergesort")
    scores, tp, ign = scores[order], tp[order], ign[order]
    keep = ~ign
    scores, tp = scores[keep], tp[keep]
    tps = np.cumsum(tp, dtype=np.float64)
    fps = np.cumsum(~tp, dtype=np.float64)
    recall = tps / n_gt if n_gt else np.zeros_like(tps)
    precision = tps / (tps + fps + np.spacing(1))
    return PRCurve(recall, precision, scores, n_gt, int(len(scores)))


def average_precision(recall: np.ndarray, precision: np.ndarray, method: str = "voc") -> float:
    """Area under the precision envelope: ``"voc"`` all-point or ``"coco"`` 101-point.

    ``recall`` must be non-decreasing (as from `pr_curve`). An empty curve has AP 0.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if recall.shape != precision.shape:
        raise ValueError(f"recall and precision must have the same shape, got {recall.shape} and {precision.shape}")
    if method == "voc":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.nonzero(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    if method == "coco":
        if not len(recall):
            return 0.0
        env = np.maximum.accumulate(precision[::-1])[::-1]
        points = np.linspace(0.0, 1.0, 101)
        idx = np.searchsorted(recall, points, side="left")
        q = np.where(idx < len(env), env[np.minimum(idx, len(env) - 1)], 0.0)
        return float(q.mean())
    raise ValueError(f"method must be 'voc' or 'coco', got {method!r}")


def ap_from_matches(matches: list[ImageMatch], threshold_index: int = 0, method: str = "voc") -> float | None:
    """AP of one class at one threshold; ``None`` when the class has no ground truth."""
    curve = pr_curve(matches, threshold_index)
    if curve.n_gt == 0:
        return None
    return average_precision(curve.recall, curve.precision, method)


def mean(values: list[float | None]) -> float | None:
    """Mean of the defined values (classes without ground truth are left out, as pycocotools)."""
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def bootstrap_ap(
    per_class: dict[str, list[ImageMatch]],
    n: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """Percentile-bootstrap intervals of AP@0.5 per class and of their mean, resampling images.

    Small validation sets make AP move a lot with a few faces (17 ``mask_worn_incorrectly`` faces in
    fmd's validation side); the interval says how far. The same resampled images serve every class,
    so the mean's interval accounts for their correlation.

    Args:
        per_class: class name -> per-image matches, every list in the same image order.
        n: resamples. level: coverage of the interval. seed: the resampling is reproducible.

    Returns:
        class name -> ``[low, high]`` (None for a class without ground truth), and ``"mean"``.
    """
    names = list(per_class)
    n_images = len(per_class[names[0]]) if names else 0
    if any(len(v) != n_images for v in per_class.values()):
        raise ValueError("every class needs one match list per image, in the same order")
    if not n_images:
        return {**{c: None for c in names}, "mean": None}
    rng = np.random.default_rng(seed)
    aps = np.full((n, len(names)), np.nan)
    for i in range(n):
        idx = rng.integers(0, n_images, n_images)
        for j, c in enumerate(names):
            ap = ap_from_matches([per_class[c][k] for k in idx], 0)
            if ap is not None:
                aps[i, j] = ap
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def interval(values: np.ndarray) -> list[float] | None:
        values = values[~np.isnan(values)]
        return [round(float(v), 4) for v in np.percentile(values, q)] if len(values) else None

    out: dict[str, list[float] | None] = {c: interval(aps[:, j]) for j, c in enumerate(names)}
    defined = ~np.isnan(aps).all(axis=0)
    out["mean"] = interval(np.nanmean(aps[:, defined], axis=1)) if defined.any() else None
    return out
