"""AP code checked by hand and against pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.evaluation.metrics import (IOU_THRESHOLDS, ap_from_matches, average_precision, bootstrap_ap, match_image,
                                          pr_curve)


def test_hand_worked_all_point_ap():
    # 3 faces; ranked detections: TP, FP, TP, FP -> recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2.
    # Envelope: 1 up to recall 1/3, 2/3 up to recall 2/3, 0 after. AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32)
    dets = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [20, 0, 30, 10], [60, 60, 70, 70]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    m = match_image(dets, scores, gt)
    curve = pr_curve([m])
    np.testing.assert_allclose(curve.recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curve.precision, [1, 1 / 2, 2 / 3, 1 / 2], atol=1e-12)
    assert average_precision(curve.recall, curve.precision, "voc") == pytest.approx(5 / 9)
    # COCO 101-point: recall points 0..0.33 (34 points) at 1, 0.34..0.66 (33 points) at 2/3, the rest 0
    assert average_precision(curve.recall, curve.precision, "coco") == pytest.approx((34 + 33 * 2 / 3) / 101)


@pytest.mark.parametrize("recall, precision, expected", [
    ([], [], 0.0),
    ([1.0], [1.0], 1.0),
    ([0.5, 1.0], [1.0, 0.5], 0.75),
    ([0.25, 0.5], [0.5, 1.0], 0.5),  # envelope lifts the first step to 1
])
def test_average_precision_table(recall, precision, expected):
    assert average_precision(np.array(recall), np.array(precision), "voc") == pytest.approx(expected)


def test_average_precision_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        average_precision(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="'voc' or 'coco'"):
        average_precision(np.zeros(1), np.zeros(1), "11point")


@pytest.mark.parametrize("n_det, n_gt", [(0, 0), (0, 3), (2, 0)])
def test_match_image_empty(n_det, n_gt):
    rng = np.random.default_rng(0)
    boxes = lambda n: np.sort(rng.uniform(0, 100, (n, 2, 2)), axis=1).reshape(n, 4)[:, [0, 2, 1, 3]]  # noqa: E731
    m = match_image(boxes(n_det), rng.uniform(size=n_det), boxes(n_gt), iou_thresholds=IOU_THRESHOLDS)
    assert m.matched_gt.shape == (10, n_det)
    assert (m.matched_gt == -1).all()
    assert m.n_gt == n_gt
    assert ap_from_matches([m]) == (None if n_gt == 0 else 0.0)


def test_match_prefers_unmatched_best_iou_and_ignores_difficult():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 11]], np.float32)
    dets = np.array([[0, 0, 10, 10], [0, 0, 10, 10.5]], np.float32)
    m = match_image(dets, [0.9, 0.8], gt)
    assert m.matched_gt[0].tolist() == [0, 1]  # the second detection takes the remaining face (COCO rule)
    m = match_image(dets, [0.9, 0.8], gt, gt_ignore=[False, True])
    assert m.n_gt == 1
    assert m.det_ignored[0].tolist() == [False, True]
    assert ap_from_matches([m]) == pytest.approx(1.0)


def _random_case(seed: int, n_images: int = 12, n_classes: int = 2):
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        g = rng.integers(0, 8)
        xy = rng.uniform(0, 200, (g, 2))
        wh = rng.uniform(4, 80, (g, 2))
        gt = np.concatenate([xy, xy + wh], 1)
        gl = rng.integers(0, n_classes, g)
        # detections: jittered copies of some faces plus random boxes
        keep = rng.uniform(size=g) < 0.8
        jit = gt[keep] + rng.normal(0, 3, (keep.sum(), 4)) * np.repeat(wh[keep] / 20, 2, axis=1)
        jit[:, 2:] = np.maximum(jit[:, 2:], jit[:, :2] + 1)
        dl = np.where(rng.uniform(size=keep.sum()) < 0.85, gl[keep], rng.integers(0, n_classes, keep.sum()))
        f = rng.integers(0, 4)
        fxy = rng.uniform(0, 200, (f, 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(4, 60, (f, 2))], 1)
        dets = np.concatenate([jit, fp]).astype(np.float32)
        dlab = np.concatenate([dl, rng.integers(0, n_classes, f)])
        scores = np.round(rng.uniform(0.05, 1, len(dets)), 3)  # rounded: some ties, as real scores
        images.append((gt.astype(np.float32), gl, dets, scores, dlab))
    return images


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("area", [(0.0, 1e5), (16.0, 32.0), (32.0, 96.0)])
def test_ap_equals_pycocotools(seed, area):
    COCO = pytest.importorskip("pycocotools.coco", reason="pycocotools (eval extra)").COCO
    COCOeval = pytest.importorskip("pycocotools.cocoeval", reason="pycocotools (eval extra)").COCOeval
    images = _random_case(seed)
    n_classes = 2
    gt_json = {"images": [{"id": i + 1, "width": 300, "height": 300} for i in range(len(images))],
               "categories": [{"id": c + 1, "name": str(c)} for c in range(n_classes)], "annotations": []}
    dt_json = []
    for i, (gt, gl, dets, scores, dl) in enumerate(images):
        for b, c in zip(gt, gl):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            gt_json["annotations"].append({"id": len(gt_json["annotations"]) + 1, "image_id": i + 1,
                                           "category_id": int(c) + 1, "bbox": [float(b[0]), float(b[1]), w, h],
                                           "area": w * h, "iscrowd": 0})
        for b, s, c in zip(dets, scores, dl):
            dt_json.append({"image_id": i + 1, "category_id": int(c) + 1, "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    coco = COCO()
    coco.dataset = gt_json
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dt_json), "bbox")
    ev.params.maxDets = [1, 10, 1000]
    ev.params.areaRng = [[area[0] ** 2, area[1] ** 2]]
    ev.params.areaRngLbl = ["x"]
    ev.evaluate()
    ev.accumulate()
    prec = ev.eval["precision"]  # (T, R, K, A, M)
    for c in range(n_classes):
        matches = [match_image(d[l == c], s[l == c], g[gl == c], None, IOU_THRESHOLDS, area)
                   for g, gl, d, s, l in images]
        for t in range(len(IOU_THRESHOLDS)):
            p = prec[t, :, c, 0, -1]
            expected = float(np.mean(p)) if (p > -1).any() else None
            ours = ap_from_matches(matches, t, "coco")
            if expected is None:
                assert ours is None
            else:
                assert ours == pytest.approx(expected, abs=1e-6), (c, t)


def _noisy_class(rng, n_images, faces_per_image, hit_rate):
    """Per-image matches: each face found (box on it, high score) with probability ``hit_rate``,
    otherwise a false box elsewhere."""
    out = []
    for _ in range(n_images):
        xy = rng.uniform(0, 500, (faces_per_image, 2))
        gt = np.c_[xy, xy + 20]
        found = rng.random(faces_per_image) < hit_rate
        det = np.where(found[:, None], gt, gt + 300)
        out.append(match_image(det, rng.uniform(0, 1, faces_per_image), gt, np.zeros(faces_per_image, bool),
                               IOU_THRESHOLDS[:1]))
    return out


def test_bootstrap_intervals_bracket_the_ap_and_widen_with_fewer_faces():
    rng = np.random.default_rng(0)
    per = {"many": _noisy_class(rng, 100, 5, 0.7), "few": _noisy_class(rng, 100, 1, 0.7)}
    ci = bootstrap_ap(per, n=300)
    for c in per:
        lo, hi = ci[c]
        assert lo < ap_from_matches(per[c]) < hi
    assert ci["few"][1] - ci["few"][0] > 1.5 * (ci["many"][1] - ci["many"][0])  # 100 faces vs 500
    mean_ap = (ap_from_matches(per["many"]) + ap_from_matches(per["few"])) / 2
    assert ci["mean"][0] < mean_ap < ci["mean"][1]
    assert bootstrap_ap(per, n=300) == ci  # seeded: the same numbers every run


def test_bootstrap_of_perfect_detections_is_a_point_and_empty_classes_are_none():
    rng = np.random.default_rng(1)
    per = {"perfect": _noisy_class(rng, 20, 3, 1.0),
           "absent": [match_image(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), np.zeros(0, bool),
                                  IOU_THRESHOLDS[:1]) for _ in range(20)]}
    ci = bootstrap_ap(per, n=50)
    assert ci["perfect"] == [1.0, 1.0] and ci["absent"] is None and ci["mean"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="same order"):
        bootstrap_ap({"a": per["perfect"], "b": per["perfect"][:5]})
