"""The RFB single-pass detector's torch-free side: priors, box coding, decoding, the ONNX detector."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.detectors import rfb


@pytest.mark.parametrize("h, w", [(480, 640), (240, 320), (300, 416), (97, 131)])
def test_priors_follow_the_upstream_layout(h, w):
    sizes = rfb.feature_sizes(h, w)
    assert sizes == [(-(-h // s), -(-w // s)) for s in rfb.STRIDES]  # ceil(side / stride)
    p = rfb.priors(h, w)
    assert len(p) == sum(fh * fw * k for (fh, fw), k in zip(sizes, rfb.PRIORS_PER_CELL))
    assert p.min() >= 0 and p.max() <= 1
    # first prior: centre of the first stride-8 cell, 10 px wide
    np.testing.assert_allclose(p[0], [0.5 / sizes[0][1], 0.5 / sizes[0][0], 10 / w, 10 / h], rtol=1e-6)


def test_upstream_640x480_has_17640_priors():
    assert len(rfb.priors(480, 640)) == 17640  # the peer ONNX's output length


def test_encode_then_decode_returns_the_boxes():
    prior = rfb.priors(240, 320)[:500]
    rng = np.random.default_rng(0)
    c = prior.copy()
    c[:, :2] += rng.uniform(-0.02, 0.02, (len(c), 2))
    c[:, 2:] *= rng.uniform(0.5, 2.0, (len(c), 2))
    boxes = rfb.to_corners(c)
    np.testing.assert_allclose(rfb.decode_boxes(rfb.encode(boxes, prior), prior), boxes, atol=1e-5)


def test_decode_scores_classes_and_suppresses_duplicates():
    h, w = 240, 320
    n = len(rfb.priors(h, w))
    scores = np.zeros((1, n, 4), np.float32)
    scores[0, :, 0] = 1.0  # background everywhere
    hit = [100, 101, 4000]  # two neighbouring priors of one face, and another face
    scores[0, hit] = [[0.1, 0.1, 0.2, 0.6], [0.2, 0.1, 0.2, 0.5], [0.05, 0.9, 0.03, 0.02]]
    locs = np.zeros((1, n, 4), np.float32)
    prior = rfb.priors(h, w)
    locs[0, 101] = rfb.encode(rfb.to_corners(prior[100:101]), prior[101:102])[0]  # same box as prior 100
    xyxy, det, probs = rfb.decode(scores, locs, h, w, score_threshold=0.5)
    assert len(xyxy) == 2
    np.testing.assert_allclose(det, [0.95, 0.9], atol=1e-6)
    np.testing.assert_allclose(probs[1], np.array([0.1, 0.2, 0.6]) / 0.9, atol=1e-6)  # renormalised
    assert probs[0].argmax() == 0
    np.testing.assert_allclose(xyxy[0], rfb.to_corners(prior[4000:4001])[0] * [w, h, w, h], atol=1e-3)


def test_normalize_is_the_upstream_networks():
    image = np.full((1, 10, 20, 3), 255, np.uint8)
    image[0, 0, 0] = 127
    x = rfb.normalize(image)
    assert x.shape == (1, 3, 10, 20) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 5, 5], (255 - 127) / 128, rtol=1e-5)
    np.testing.assert_allclose(x[0, :, 0, 0], 0.0, atol=1e-6)


def test_the_old_detectors_model_is_refused(tmp_path):
    from maskwatch.errors import ModelSpecError
    from maskwatch.registry import PACKAGE_MODELS

    with pytest.raises(ModelSpecError, match="arch"):
        rfb.RFBMaskDetector(model_path=PACKAGE_MODELS / "maskwatch_detector.onnx")
def test_shipped_detector_finds_and_labels_the_three_example_faces(astronaut):
    """The shipped int8 model in one pass: the bare, masked and pulled-down-mask astronaut."""
    from maskwatch import read_image

    det = rfb.RFBMaskDetector()
    faces = det.detect(read_image("examples/three_ways.jpg"))
    assert len(faces) == 3
    order = np.argsort(faces.xyxy[:, 0])
    assert [faces.label[i] for i in order] == ["without_mask", "with_mask", "mask_worn_incorrectly"]
