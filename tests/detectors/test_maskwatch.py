"""Pre/post-processing of maskwatch's own detector (pure numpy, synthetic arrays)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maskwatch.detectors import maskwatch as DM


def test_preprocess_pads_to_multiple_of_32_with_the_mean():
    image = np.full((100, 150, 3), 124, np.uint8)
    x, scale = DM.preprocess(image, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert x.shape == (1, 3, 128, 160) and x.dtype == np.float32 and scale == 1.0
    assert np.all(x[:, :, 100:, :] == 0) and np.all(x[:, :, :, 150:] == 0)
    x, scale = DM.preprocess(image, 2.0, (0.5,) * 3, (0.5,) * 3, max_side=200)
    assert scale == pytest.approx(200 / 150) and x.shape[2:] == (160, 224)


def _maps(h=8, w=10, peaks=()):
    heat = np.zeros((1, 1, h, w), np.float32)
    cls = np.full((1, 3, h, w), 1 / 3, np.float32)
    box = np.zeros((1, 4, h, w), np.float32)
    for y, x, score, dx, dy, bw, bh, label in peaks:
        heat[0, 0, y, x] = score
        box[0, :, y, x] = (dx, dy, math.log(bw), math.log(bh))
        cls[0, :, y, x] = np.eye(3)[label]
    return heat, cls, box


@pytest.mark.parametrize("peaks, threshold, expected", [
    ((), 0.3, np.zeros((0, 4))),
    (((2, 3, 0.9, 0.5, 0.25, 4.0, 2.0, 1),), 0.3, [[4 * 3.5 - 8, 4 * 2.25 - 4, 4 * 3.5 + 8, 4 * 2.25 + 4]]),
    (((2, 3, 0.2, 0.5, 0.25, 4.0, 2.0, 1),), 0.3, np.zeros((0, 4))),
])
def test_decode_table(peaks, threshold, expected):
    xyxy, scores, probs = DM.decode(*_maps(peaks=peaks), stride=4, score_threshold=threshold)
    np.testing.assert_allclose(xyxy, np.asarray(expected, np.float32).reshape(-1, 4), atol=1e-5)
    assert scores.shape == (len(xyxy),) and probs.shape == (len(xyxy), 3)
    if len(xyxy):
        assert probs[0].argmax() == 1 and scores[0] == pytest.approx(0.9)


def test_decode_merges_overlapping_peaks():
    peaks = ((2, 3, 0.9, 0, 0, 8, 8, 0), (2, 4, 0.8, 0, 0, 8, 8, 0), (6, 8, 0.7, 0, 0, 4, 4, 2))
    xyxy, scores, _ = DM.decode(*_maps(peaks=peaks), stride=4, score_threshold=0.3, nms_threshold=0.3)
    assert scores.tolist() == pytest.approx([0.9, 0.7])
    xyxy, _, _ = DM.decode(*_maps(peaks=peaks), stride=4, score_threshold=0.3, nms_threshold=1.0)
    assert len(xyxy) == 3


def test_maskwatch_detector_needs_its_model(tmp_path):
    from maskwatch import create_detector

    with pytest.raises(FileNotFoundError, match="not found"):
        create_detector("maskwatch", model_path=tmp_path / "missing.onnx")


def test_maskwatch_detector_input_scale_follows_min_and_max_side(astronaut):
    """A small photo is upscaled until its longer side reaches ``min_side``; boxes stay in its pixels."""
    from maskwatch import create_detector, registry

    if registry.find("maskwatch-detector") is None:
        pytest.skip("trained detector not installed (scripts/build_detector.py --install)")
    det = create_detector("maskwatch", scale=1.0, min_side=640)
    seen = []
    forward = det.forward
    det.forward = lambda x: seen.append(x.shape) or forward(x)
    small = astronaut[::2, ::2]  # 256x256
    faces = det.detect(small)
    assert seen[-1][2:] == (640, 640)  # 256 * 2.5, already a multiple of 32
    assert faces.image_size == (256, 256) and np.all(faces.xyxy <= 256)
    det.max_side = 320
    det.detect(astronaut)
    assert seen[-1][2:] == (320, 320)
