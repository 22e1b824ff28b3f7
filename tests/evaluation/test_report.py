"""Report pictures: the galleries of false positives and missed faces (synthetic images, no models)."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.evaluation.detection import ImageResult, detection_metrics, mistakes
from maskwatch.evaluation.report import plot_mistakes, write_report
from maskwatch.faces import Faces
from maskwatch.imageio import read_image, write_image
from maskwatch.datasets import VocImage


def _result(tmp_path, name, gt_boxes, det_boxes, scores):
    path = write_image(tmp_path / f"{name}.jpg", np.full((120, 160, 3), 90, np.uint8))
    gt = VocImage(path, 160, 120, np.float32(gt_boxes).reshape(-1, 4), ["with_mask"] * len(gt_boxes),
                  np.zeros(len(gt_boxes), bool))
    probs = np.tile(np.float32([[0.1, 0.8, 0.1]]), (len(det_boxes), 1))
    return ImageResult(gt, Faces(xyxy=np.float32(det_boxes).reshape(-1, 4), det_score=np.float32(scores), probs=probs), 0.0)


def test_mistakes_lists_unmatched_detections_by_score_and_missed_faces_by_size(tmp_path):
    results = [
        # a hit, a false positive on nothing (IoU 0), a duplicate of the hit (IoU 1 but already taken)
        _result(tmp_path, "a", [[10, 10, 40, 40]], [[10, 10, 40, 40], [100, 60, 120, 80], [10, 10, 40, 40]],
                [0.9, 0.7, 0.3]),
        # a face found with a box too far off (IoU 0.33): one false positive and one missed face; a face missed
        _result(tmp_path, "b", [[20, 20, 60, 60], [100, 20, 110, 30]], [[40, 20, 80, 60]], [0.8]),
    ]
    m = mistakes(results)
    assert [(e["image"][-5:], e["score"], e["iou"]) for e in m["false_positives"]] == [
        ("b.jpg", 0.8, pytest.approx(0.333, abs=1e-3)), ("a.jpg", 0.7, 0.0), ("a.jpg", 0.3, 1.0)]
    assert m["false_positives"][0]["label"] == "without_mask" and m["false_positives"][0]["box"] == [40, 20, 80, 60]
    assert [(e["size"], e["iou"]) for e in m["missed"]] == [(40.0, pytest.approx(0.333, abs=1e-3)), (10.0, 0.0)]
    assert "score" not in m["missed"][0] and m["missed"][0]["label"] == "with_mask"
    assert len(mistakes(results, n=1)["false_positives"]) == 1
    assert detection_metrics(results)["mistakes"] == m


def test_loose_iou_counts_faces_boxed_too_far_off(tmp_path):
    # 3 faces: one boxed exactly, one at IoU 0.33, one missed
    m = detection_metrics([_result(tmp_path, "a", [[10, 10, 40, 40], [60, 20, 100, 60], [120, 80, 140, 100]],
                                   [[10, 10, 40, 40], [80, 20, 120, 60]], [0.9, 0.8])])
    assert m["face_recall"] == pytest.approx(1 / 3, abs=1e-4) and m["face_recall30"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["face_AP30"] == pytest.approx(2 / 3, abs=1e-4)


def test_galleries_are_written_with_the_report(tmp_path):
    pytest.importorskip("matplotlib", reason="the report's galleries need the eval extra (matplotlib)")
    results = [_result(tmp_path, f"img{i}", [[20, 20, 60, 60]], [[90, 40, 130, 80]], [0.5]) for i in range(3)]
    m = detection_metrics(results)
    paths = write_report(m, tmp_path / "out")
    fp = read_image(paths["false_positives"])
    assert fp.shape == (160 + 16, 8 * 160, 3)  # one row of 8 tiles, caption strip on top
    assert fp[16:, :160].min() < 60  # the red box is drawn over the grey photo
    assert read_image(paths["missed"]).shape == fp.shape
    # an entry whose image is gone is left out; nothing drawable -> no file
    assert plot_mistakes([{**m["mistakes"]["missed"][0], "image": str(tmp_path / "gone.jpg")}],
                         tmp_path / "none.jpg") is None
    assert not (tmp_path / "none.jpg").exists()
