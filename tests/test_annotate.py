import numpy as np
import pytest

from maskwatch.annotate import BoxAnnotator, annotate
from maskwatch.faces import Faces
from maskwatch.labels import COLORS

MASK, NOMASK, WRONG = np.eye(3, dtype=np.float32) * 0.9 + 0.03


def crowd(n=60, seed=0, size=(640, 480)):
    """Non-overlapping faces of 8 to 120 px at random places (a dense, mixed-size crowd)."""
    rng = np.random.default_rng(seed)
    w, h = size
    boxes = []
    while len(boxes) < n:
        side = float(rng.choice([8, 12, 16, 24, 40, 80, 120]))
        x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
        box = np.array([x, y, x + side, y + side], np.float32)
        if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in boxes):
            boxes.append(box)
    probs = np.array([MASK, NOMASK, WRONG])[rng.integers(0, 3, n)]
    return Faces(np.array(boxes), probs=probs, image_size=size)


def intersect(a, b):
    return min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_overlap_neither_each_other_nor_other_faces(seed):
    faces = crowd(seed=seed)
    placed = BoxAnnotator().place_labels(faces, 640, 480)
    spots = [(i, p[0]) for i, p in enumerate(placed) if p is not None]
    assert len(spots) >= 10  # the bigger faces are labelled
    for k, (i, rect) in enumerate(spots):
        assert 0 <= rect[0] and rect[2] <= 640 and 0 <= rect[1] and rect[3] <= 480
        assert not any(intersect(rect, faces.xyxy[j]) for j in range(len(faces)) if j != i)
        assert not any(intersect(rect, other) for _, other in spots[k + 1:])


def test_text_scales_with_the_face_and_small_faces_keep_only_their_colour():
    faces = Faces(np.array([[10, 10, 18, 18], [100, 100, 140, 140], [300, 100, 460, 260]], np.float32),
                  probs=np.array([MASK, NOMASK, WRONG]))
    placed = BoxAnnotator().place_labels(faces, 640, 480)
    assert placed[0] is None  # an 8 px face is too small for legible text
    assert placed[1][1] < placed[2][1]  # the bigger face gets the bigger text
    assert placed[2][2].startswith("mask_worn_incorrectly")


def test_legend_is_drawn_once_for_faces_shown_by_colour_only():
    image = np.full((200, 300, 3), 90, np.uint8)
    faces = Faces(np.array([[150, 150, 158, 158]], np.float32), probs=np.array([NOMASK]))
    with_legend = BoxAnnotator().annotate(image, faces)
    without = BoxAnnotator(legend=False).annotate(image, faces)
    legend = np.any(with_legend != without, axis=2)
    ys, xs = np.nonzero(legend)
    assert len(ys) and xs.max() < 150 and ys.max() < 100  # one panel, in the free top-left corner
    assert np.any(np.all(with_legend[ys, xs] == COLORS["without_mask"], axis=1))  # its colour swatch


def test_header_adds_an_even_band_and_keeps_the_image_below():
    image = np.random.default_rng(0).integers(0, 255, (121, 200, 3), dtype=np.uint8)
    faces = crowd(5, size=(200, 121))
    headed = BoxAnnotator(header=True).annotate(image, faces)
    band = headed.shape[0] - image.shape[0]
    assert band > 0 and band % 2 == 0 and headed.shape[1] == 200
    # below the band: the same drawing minus the legend (the header is the legend)
    assert np.array_equal(headed[band:], BoxAnnotator(legend=False).annotate(image, faces))


def test_empty_and_unclassified_faces():
    image = np.zeros((50, 60, 3), np.uint8)
    assert np.array_equal(annotate(image, Faces.empty()), image)
    faces = Faces(np.array([[5, 20, 45, 48]], np.float32), det_score=[0.7])
    placed = BoxAnnotator().place_labels(faces, 60, 50)
    assert placed[0] is not None and placed[0][2].startswith("face")
    assert annotate(image, faces, header=True).shape[0] > 50


def test_track_ids_prefix_the_labels():
    faces = Faces(np.array([[100, 100, 200, 200]], np.float32), probs=np.array([MASK]), track_id=[7])
    assert BoxAnnotator().place_labels(faces, 400, 400)[0][2] == "#7 with_mask 0.93"
    assert BoxAnnotator(show_track=False).place_labels(faces, 400, 400)[0][2] == "with_mask 0.93"
