"""End-to-end detection evaluation of a `Pipeline` on a Pascal VOC dataset.

``evaluate_detection(pipe, images)`` runs the pipeline on every image and returns a JSON-ready
dict: per-class AP@0.5 (all-point), mAP@0.5, mAP@0.5:0.95, class-agnostic face AP and recall,
the two-class compliance view, AP by face size, the confusion matrix of matched faces, PR curves
and latency. `maskwatch.evaluation.report` turns it into Markdown and pictures.

A classified face counts as a detection of its most probable class with score
``det_score * p(class)`` (what a user sees). ``mAP50_all_classes`` also scores every box once per
class with ``det_score * p(c)`` — the convention of most detector benchmarks, an upper bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import ImageReadError
from ..faces import Faces
from ..imageio import read_image
from ..labels import LABELS, WITH_MASK
from ..datasets import VocImage
from ..ops import box_iou
from .metrics import (IOU_THRESHOLDS, SIZE_BUCKETS, ImageMatch, ap_from_matches, bootstrap_ap, box_size, match_image, mean,
                      pr_curve)

#: Two-class compliance view: column groups of LABELS.
COMPLIANCE = {"compliant": (WITH_MASK,), "non_compliant": tuple(label for label in LABELS if label != WITH_MASK)}
#: A looser IoU for class-agnostic face AP / recall (``face_AP30``, ``face_recall30``): the gap to IoU 0.5
#: is the faces found but boxed too far off.
LOOSE_IOU = 0.3
BACKGROUND = "background"
MISSED = "missed"


@dataclass
class ImageResult:
    gt: VocImage
    faces: Faces
    seconds: float
    detector_seconds: float | None = None
    classifier_seconds: float | None = None


@dataclass
class _Dets:
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)


def run_pipeline(pipe: Any, images: list[VocImage], progress: Callable[[Iterable, int], Iterable] | None = None,
                 on_error: Callable[[str], None] | None = None) -> list[ImageResult]:
    """Run ``pipe`` on every image, timing each call with `time.perf_counter`.

    ``pipe`` is a `Pipeline` (its `Pipeline.detect_timed` gives the detector's and the classifier's
    seconds too) or anything with ``detect(image, source=) -> Faces``. Image decoding is not timed.
    An unreadable image is reported through ``on_error`` and skipped.
    """
    timed = getattr(pipe, "detect_timed", None)
    results = []
    it = progress(images, len(images)) if progress else images
    for im in it:
        try:
            image = read_image(im.path)
        except ImageReadError as exc:
            if on_error:
                on_error(str(exc))
            continue
        t0 = time.perf_counter()
        if timed is not None:
            faces, stages = timed(image, source=str(im.path))
        else:
            faces, stages = pipe.detect(image, source=str(im.path)), {}
        seconds = time.perf_counter() - t0
        results.append(ImageResult(im, faces, seconds, stages.get("detector"), stages.get("classifier")))
    return results


def _class_scores(faces: Faces, groups: dict[str, tuple[str, ...]], all_classes: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class name: (boxes, scores) of the detections assigned to it."""
    cols = {name: [faces.labels.index(lbl) for lbl in members] for name, members in groups.items()}
    probs = np.stack([faces.probs[:, c].sum(1) for c in cols.values()], 1) if len(faces) else np.zeros((0, len(cols)))
    out = {}
    best = probs.argmax(1) if len(faces) else np.zeros(0, int)
    for k, name in enumerate(cols):
        keep = np.ones(len(faces), bool) if all_classes else best == k
        out[name] = (faces.xyxy[keep], faces.det_score[keep] * probs[keep, k])
    return out


def _gt_groups(im: VocImage, groups: dict[str, tuple[str, ...]]) -> dict[str, np.ndarray]:
    labels = np.asarray(im.labels, dtype=object)
    return {name: np.isin(labels, members) if len(labels) else np.zeros(0, bool) for name, members in groups.items()}


def _per_class(results: list[ImageResult], groups: dict[str, tuple[str, ...]], thresholds: np.ndarray,
               all_classes: bool = False, size_range: tuple[float, float] | None = None) -> dict[str, list[ImageMatch]]:
    matches: dict[str, list[ImageMatch]] = {name: [] for name in groups}
    for r in results:
        dets = _class_scores(r.faces, groups, all_classes)
        gts = _gt_groups(r.gt, groups)
        for name in groups:
            sel = gts[name]
            boxes, scores = dets[name]
            matches[name].append(match_image(boxes, scores, r.gt.boxes[sel], r.gt.difficult[sel], thresholds,
                                             size_range))
    return matches


def _face_matches(results: list[ImageResult], thresholds: np.ndarray,
                  size_range: tuple[float, float] | None = None) -> list[ImageMatch]:
    return [match_image(r.faces.xyxy, r.faces.det_score, r.gt.boxes, r.gt.difficult, thresholds, size_range)
            for r in results]


def _curve_dict(matches: list[ImageMatch], step: int = 1) -> dict[str, Any]:
    c = pr_curve(matches)
    idx = np.unique(np.linspace(0, len(c.recall) - 1, min(len(c.recall), 200)).astype(int)) if len(c.recall) else []
    return {"recall": [round(float(v), 4) for v in c.recall[idx]],
            "precision": [round(float(v), 4) for v in c.precision[idx]],
            "score": [round(float(v), 4) for v in c.scores[idx]], "n_gt": c.n_gt}


def _latency(values: list[float | None]) -> dict[str, float] | None:
    vals = np.asarray([v for v in values if v is not None], np.float64) * 1000
    if not len(vals):
        return None
    return {"mean_ms": round(float(vals.mean()), 2), "median_ms": round(float(np.median(vals)), 2),
            "p90_ms": round(float(np.percentile(vals, 90)), 2), "n": int(len(vals))}


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def detection_metrics(results: list[ImageResult]) -> dict[str, Any]:
    """All metrics of `evaluate_detection` from already computed pipeline results."""
    thresholds = IOU_THRESHOLDS
    classified = bool(results) and all(r.faces.probs is not None for r in results)
    out: dict[str, Any] = {"n_images": len(results), "n_faces": int(sum(len(r.gt.boxes) for r in results)),
                           "n_detections": int(sum(len(r.faces) for r in results)), "classified": classified}
    out["gt_per_class"] = {c: int(sum(lbl == c for r in results for lbl in r.gt.labels)) for c in LABELS}

    # class-agnostic faces
    face = _face_matches(results, thresholds)
    face_curve = pr_curve(face)
    out["face_AP50"] = _round(ap_from_matches(face, 0))
    out["face_AP50_95"] = _round(mean([ap_from_matches(face, i) for i in range(len(thresholds))]))
    out["face_recall"] = _round(face_curve.max_recall)
    out["face_precision"] = _round(face_curve.precision[-1]) if len(face_curve.precision) else None
    # at IoU 0.3: faces found, but boxed too far off to count at 0.5
    loose = _face_matches(results, np.array([LOOSE_IOU]))
    out["face_AP30"] = _round(ap_from_matches(loose, 0))
    out["face_recall30"] = _round(pr_curve(loose).max_recall)
    curves = {"face": _curve_dict(face)}

    if classified:
        groups = {c: (c,) for c in LABELS}
        per = _per_class(results, groups, thresholds)
        ap50 = {c: ap_from_matches(per[c], 0) for c in LABELS}
        ap5095 = {c: mean([ap_from_matches(per[c], i) for i in range(len(thresholds))]) for c in LABELS}
        out["AP50"] = {c: _round(v) for c, v in ap50.items()}
        out["AP50_95"] = {c: _round(v) for c, v in ap5095.items()}
        out["recall50"] = {c: _round(pr_curve(per[c]).max_recall) for c in LABELS}
        out["mAP50"] = _round(mean(list(ap50.values())))
        out["mAP50_95"] = _round(mean(list(ap5095.values())))
        ci = bootstrap_ap({c: per[c] for c in LABELS})  # how far a few faces move AP@0.5
        out["mAP50_ci95"], out["AP50_ci95"] = ci.pop("mean"), ci
        out["AP50_coco101"] = {c: _round(ap_from_matches(per[c], 0, "coco")) for c in LABELS}
        out["mAP50_coco101"] = _round(mean(list(out["AP50_coco101"].values())))
        multi = _per_class(results, groups, thresholds[:1], all_classes=True)
        out["mAP50_all_classes"] = _round(mean([ap_from_matches(multi[c], 0) for c in LABELS]))
        curves.update({c: _curve_dict(per[c]) for c in LABELS})

        comp = _per_class(results, COMPLIANCE, thresholds[:1])
        out["compliance"] = {
            "groups": {k: list(v) for k, v in COMPLIANCE.items()},
            "AP50": {k: _round(ap_from_matches(comp[k], 0)) for k in COMPLIANCE},
            "recall50": {k: _round(pr_curve(comp[k]).max_recall) for k in COMPLIANCE},
        }
        out["compliance"]["mAP50"] = _round(mean(list(out["compliance"]["AP50"].values())))
        out["confusion"] = confusion(results, face)
    out["mistakes"] = mistakes(results, face)

    by_size: dict[str, Any] = {}
    for name, rng in SIZE_BUCKETS.items():
        fm = _face_matches(results, thresholds[:1], rng)
        entry = {"n_faces": int(sum(m.n_gt for m in fm)), "face_AP50": _round(ap_from_matches(fm, 0)),
                 "face_recall": _round(pr_curve(fm).max_recall)}
        if classified:
            pm = _per_class(results, {c: (c,) for c in LABELS}, thresholds[:1], size_range=rng)
            entry["mAP50"] = _round(mean([ap_from_matches(pm[c], 0) for c in LABELS]))
        by_size[name] = entry
    out["by_size"] = by_size
    out["latency"] = {
        "pipeline": _latency([r.seconds for r in results]),
        "detector": _latency([r.detector_seconds for r in results]),
        "classifier": _latency([r.classifier_seconds for r in results]),
        "image_size_median": [int(np.median([r.gt.width for r in results])) if results else 0,
                              int(np.median([r.gt.height for r in results])) if results else 0],
    }
    out["pr_curves"] = curves
    return out


def confusion(results: list[ImageResult], face: list[ImageMatch] | None = None) -> dict[str, Any]:
    """Confusion matrix of faces matched class-agnostically at IoU 0.5.

    Rows are the true class plus ``background`` (a detection matching no face); columns the
    predicted class plus ``missed`` (a face no detection matched).
    """
    face = face if face is not None else _face_matches(results, [0.5])
    n = len(LABELS)
    mat = np.zeros((n + 1, n + 1), np.int64)
    for r, m in zip(results, face):
        order = np.argsort(-r.faces.det_score.astype(np.float64), kind="mergesort")
        pred = r.faces.class_id[order]
        matched = m.matched_gt[0]
        gt_ids = [LABELS.index(lbl) for lbl in r.gt.labels]
        hit = set()
        for d, g in enumerate(matched):
            if g >= 0:
                if not r.gt.difficult[g]:
                    mat[gt_ids[g], pred[d]] += 1
                hit.add(int(g))
            elif not m.det_ignored[0, d]:
                mat[n, pred[d]] += 1
        for g, gid in enumerate(gt_ids):
            if g not in hit and not r.gt.difficult[g]:
                mat[gid, n] += 1
    matched_total = mat[:n, :n].sum()
    return {"rows": [*LABELS, BACKGROUND], "columns": [*LABELS, MISSED], "matrix": mat.tolist(),
            "matched_accuracy": _round(np.trace(mat[:n, :n]) / matched_total) if matched_total else None}


def mistakes(results: list[ImageResult], face: list[ImageMatch] | None = None, n: int = 32) -> dict[str, list[dict]]:
    """The errors most worth a look, matched class-agnostically at IoU 0.5.

    ``false_positives``: the ``n`` highest-scored detections that match no annotated face (on crowd
    photos often a real face the annotators left out, or a box too far off a face). ``missed``: the
    ``n`` largest annotated faces no detection matched. Each entry: ``image`` (path), ``box``
    (x1, y1, x2, y2), ``label`` (predicted / annotated; None if unclassified), ``score`` (detections),
    ``iou`` (the best IoU with any annotated face / any detection: near 0, nothing there; up to 0.5, a
    box too far off; above 0.5, a second box on a face already found), ``size`` (sqrt of the box area,
    px).
    """
    face = face if face is not None else _face_matches(results, [0.5])
    fps: list[dict] = []
    missed: list[dict] = []

    def entry(path: Path, box: np.ndarray, iou: float, **kw: Any) -> dict[str, Any]:
        return {"image": str(path), "box": [round(float(v), 1) for v in box], **kw, "iou": round(float(iou), 3),
                "size": round(float(box_size(box[None])[0]), 1)}

    for r, m in zip(results, face):
        order = np.argsort(-r.faces.det_score.astype(np.float64), kind="mergesort")
        labels = r.faces.label
        ious = box_iou(r.faces.xyxy, r.gt.boxes) if len(r.faces) and len(r.gt.boxes) else \
            np.zeros((len(r.faces), len(r.gt.boxes)), np.float32)
        hit = {int(g) for g in m.matched_gt[0] if g >= 0}
        for d, g in enumerate(m.matched_gt[0]):
            if g < 0 and not m.det_ignored[0, d]:
                i = int(order[d])
                fps.append(entry(r.gt.path, r.faces.xyxy[i], ious[i].max(initial=0.0),
                                 label=labels[i] if labels else None, score=round(float(r.faces.det_score[i]), 4)))
        for g, (box, label) in enumerate(zip(r.gt.boxes, r.gt.labels)):
            if g not in hit and not r.gt.difficult[g]:
                missed.append(entry(r.gt.path, box, ious[:, g].max(initial=0.0), label=label))
    fps.sort(key=lambda e: -e["score"])
    missed.sort(key=lambda e: -e["size"])
    return {"false_positives": fps[:n], "missed": missed[:n]}


def evaluate_detection(pipe: Any, images: list[VocImage], progress: Callable | None = None,
                       on_error: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``pipe`` (a `Pipeline`, or anything with ``detect(image, source=) -> Faces``) on
    ``images`` and compute every detection metric (see the module docstring)."""
    results = run_pipeline(pipe, images, progress, on_error)
    return detection_metrics(results)
