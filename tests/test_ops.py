import numpy as np
import pytest

from maskwatch import ops


def test_clip_boxes_handles_out_of_image_and_empty():
    boxes = np.array([[-5, -5, 10, 10], [90, 40, 120, 70]], np.float32)
    np.testing.assert_array_equal(ops.clip_boxes(boxes, 100, 50), [[0, 0, 10, 10], [90, 40, 100, 50]])
    assert ops.clip_boxes(np.zeros((0, 4)), 10, 10).shape == (0, 4)
    assert ops.clip_boxes([], 10, 10).shape == (0, 4)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], 1.0),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], 50 / 150),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], 0.0),
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], 0.0),
    ],
)
def test_box_iou(a, b, expected):
    assert ops.box_iou(a, b)[0, 0] == pytest.approx(expected)


def test_box_iou_shapes_with_empty():
    assert ops.box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


def test_square_boxes_with_margin():
    sq = ops.square_boxes([[10, 20, 30, 60]], margin=0.5)  # w 20, h 40 -> side 60 around (20, 40)
    np.testing.assert_allclose(sq, [[-10, 10, 50, 70]])


def test_nms_keeps_best_of_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keep = ops.nms(boxes, np.array([0.5, 0.9, 0.3]), 0.4)
    assert keep.tolist() == [1, 2]
    assert ops.nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_crop_faces_shapes_and_content():
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:40, 50:70] = 255  # a white square "face"
    crops = ops.crop_faces(img, [[50, 20, 70, 40]], size=32, margin=0.0)
    assert crops.shape == (1, 32, 32, 3) and crops.dtype == np.uint8
    assert crops.min() == 255  # margin 0: the crop is exactly the square
    wider = ops.crop_faces(img, [[50, 20, 70, 40]], size=32, margin=1.0)
    assert wider[0, 16, 16, 0] == 255 and wider[0, 0, 0, 0] == 0


def test_crop_faces_out_of_image_replicates_border():
    img = np.full((50, 50, 3), 7, np.uint8)
    img[:, :5] = 200
    crops = ops.crop_faces(img, [[-20, 10, 10, 40]], size=16, margin=0.0)
    assert crops.shape == (1, 16, 16, 3)
    assert crops[0, 8, 0, 0] == 200  # left border replicated, not black
    outside = ops.crop_faces(img, [[100, 100, 120, 120]], size=8, margin=0.0)
    assert outside.shape == (1, 8, 8, 3) and outside.max() == 0


def test_crop_faces_empty_and_bad_image():
    assert ops.crop_faces(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 4)), 16, 0.2).shape == (0, 16, 16, 3)
    with pytest.raises(ValueError, match=r"image must be \(H, W, 3\)"):
        ops.crop_faces(np.zeros((10, 10), np.uint8), [[0, 0, 5, 5]], 16, 0.2)


def test_normalize_matches_formula():
    crops = np.full((2, 4, 4, 3), 255, np.uint8)
    x = ops.normalize(crops, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert x.shape == (2, 3, 4, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [2.0, 1.0, 0.5])


def test_normalize_random_crops_contiguous_nchw():
    crops = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = ops.normalize(crops, mean, std)
    assert x.shape == (3, 3, 5, 7) and x.flags["C_CONTIGUOUS"]
    expected = ((crops / 255.0 - np.array(mean)) / np.array(std)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x, expected, atol=1e-5)


def test_normalize_nhwc_is_the_nchw_result_untransposed():
    crops = np.random.default_rng(1).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = ops.normalize(crops, mean, std, "NHWC")
    assert x.shape == (2, 5, 7, 3) and x.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(x, ops.normalize(crops, mean, std).transpose(0, 2, 3, 1))
    assert ops.normalize(crops[:0], mean, std, "NHWC").shape == (0, 5, 7, 3)
    with pytest.raises(ValueError, match="layout must be"):
        ops.normalize(crops, mean, std, "CHW")


def test_softmax_rows_sum_to_one():
    p = ops.softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, 0.0]]))
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[1, 0] == pytest.approx(1.0)


def test_resize_max():
    img = np.zeros((100, 400, 3), np.uint8)
    out, scale = ops.resize_max(img, 200)
    assert out.shape == (50, 200, 3) and scale == 0.5
    same, s = ops.resize_max(img, 1000)
    assert same is img and s == 1.0
