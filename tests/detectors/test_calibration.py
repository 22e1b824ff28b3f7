"""Box calibration: pure transform, fitting it back, and the detector wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.detectors import Calibrated, entry
from maskwatch.detectors.calibration import calibrate_boxes, fit_box_calibration
from maskwatch.detectors import FaceDetector
from maskwatch.faces import Faces


@pytest.mark.parametrize("calibration, expected", [
    ((0, 0, 1, 1), [[10, 20, 30, 60]]),
    ((0, 0.1, 1, 0.8), [[10, 28, 30, 60]]),  # centre 4 px lower, height 32
    ((0.5, 0, 2, 1), [[10, 20, 50, 60]]),
])
def test_calibrate_boxes_table(calibration, expected):
    np.testing.assert_allclose(calibrate_boxes(np.array([[10, 20, 30, 60]], np.float32), calibration), expected)


def test_calibrate_boxes_empty():
    assert calibrate_boxes(np.zeros((0, 4)), (0, 0.1, 1, 0.9)).shape == (0, 4)


def test_fit_recovers_a_known_calibration():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (40, 2))
    det = np.concatenate([xy, xy + rng.uniform(10, 80, (40, 2))], 1).astype(np.float32)
    truth = (0.02, 0.13, 1.04, 0.88)
    gt = calibrate_boxes(det, truth)
    fitted = fit_box_calibration([(det[:20], gt[:20]), (det[20:], gt[20:]), (np.zeros((0, 4)), gt[:2])])
    np.testing.assert_allclose(fitted, truth, atol=1e-4)
    with pytest.raises(ValueError, match="no detection"):
        fit_box_calibration([(det[:1], det[:1] + 500)])


class _Stub(FaceDetector):
    name = "yunet"

    def _detect(self, image):
        return Faces(xyxy=[[10, 20, 30, 60]], det_score=[0.9])


def test_calibrated_detector_moves_boxes_and_keeps_the_rest():
    det = Calibrated(_Stub(scale=1.0), (0, 0.1, 1, 0.8))
    faces = det.detect(np.zeros((50, 40, 3), np.uint8))
    np.testing.assert_allclose(faces.xyxy, [[10, 26, 30, 50]])  # the detector clipped y2 to 50 first
    assert faces.det_score.tolist() == pytest.approx([0.9]) and faces.image_size == (40, 50)
    assert det.describe()["scale"] == 1.0 and det.name == "yunet"
    assert det.describe()["calibration"] == (0, 0.1, 1, 0.8)
    assert entry("yunet").calibration[1] > 0 and entry("ssd").calibration[1] > 0  # YuNet's, SSD's: measured


def test_calibrated_wraps_any_callable():
    def plain(image):
        return Faces(xyxy=[[10, 20, 30, 60]], det_score=[0.9], image_size=(40, 50), data={"k": [7]})

    faces = Calibrated(plain, (0, 0.1, 1, 0.8))(np.zeros((50, 40, 3), np.uint8))
    np.testing.assert_allclose(faces.xyxy, [[10, 28, 30, 50]])  # unclipped 20..60 -> 28..60, clipped to 50
    assert faces.data["k"].tolist() == [7] and Calibrated(plain, (0, 0, 1, 1)).describe()["name"] == "plain"
