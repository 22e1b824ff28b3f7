"""Tiled detection of large images (synthetic squares as faces, and YuNet on a mosaic)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskwatch import Faces, create_detector
from maskwatch.detectors import FaceDetector
from maskwatch.ops import box_iou
from maskwatch.detectors.tiling import Tiled, tile_origins


class SquareDetector(FaceDetector):
    """Finds white squares of at least 4x4 px (after the base class's max_side shrinking)."""

    name = "squares"

    def _detect(self, image: np.ndarray) -> Faces:
        n, _, stats, _ = cv2.connectedComponentsWithStats((image[..., 0] > 128).astype(np.uint8))
        rows = [s for s in stats[1:] if s[2] >= 4 and s[3] >= 4]
        xyxy = [[x, y, x + w, y + h] for x, y, w, h, _ in rows]
        return Faces(xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4), det_score=np.full(len(rows), 0.9))


@pytest.mark.parametrize("length, tile, overlap, expected", [
    (500, 1024, 0.25, [0]),
    (1024, 1024, 0.25, [0]),
    (2000, 1024, 0.25, [0, 488, 976]),
    (3000, 800, 0.0, [0, 733, 1467, 2200]),
])
def test_tile_origins_cover_the_image_with_the_overlap(length, tile, overlap, expected):
    origins = tile_origins(length, tile, overlap)
    assert origins == expected
    assert origins[-1] + tile >= length and all(b - a <= tile * (1 - overlap) for a, b in zip(origins, origins[1:]))


def test_tiles_find_small_faces_a_capped_detector_misses_each_once():
    image = np.zeros((2400, 3200, 3), np.uint8)
    truth = [[100, 100, 108, 108], [1500, 900, 1508, 908], [3100, 2300, 3108, 2308],  # small
             [790, 400, 830, 440],  # straddles the first vertical tile edge (tile 800)
             [1000, 1000, 1400, 1400]]  # larger than the overlap: whole-image pass
    for x1, y1, x2, y2 in truth:
        image[y1:y2, x1:x2] = 255
    capped = SquareDetector(max_side=1000)
    assert len(capped.detect(image)) == 2  # the 8 px squares shrink to 2.5 px: only the big two
    faces = Tiled(SquareDetector(max_side=1000), tile=800, overlap=0.25).detect(image)
    assert len(faces) == len(truth) and faces.image_size == (3200, 2400)
    iou = box_iou(faces.xyxy, np.float32(truth))
    assert sorted(iou.argmax(1).tolist()) == list(range(len(truth)))
    assert iou.max(1).min() > 0.7


def test_small_images_go_straight_to_the_detector():
    image = np.zeros((300, 400, 3), np.uint8)
    image[10:20, 10:20] = 255
    tiled = Tiled(SquareDetector(), tile=512)
    assert tiled.detect(image).xyxy.tolist() == SquareDetector().detect(image).xyxy.tolist() == [[10, 10, 20, 20]]
    assert tiled.name == "squares" and tiled.describe()["score_threshold"] == 0.5  # the wrapped detector's settings
    assert tiled.describe()["tile"] == 512
    with pytest.raises(ValueError, match="overlap"):
        Tiled(SquareDetector(), overlap=1.0)


def test_yunet_on_a_large_canvas_finds_every_astronaut_once(shared_models, astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas = np.full((1200, 1800, 3), 128, np.uint8)
    origins = [(x, y) for y in (100, 800) for x in (100, 700, 1300)]
    origins[1] = (530, 100)  # its face (x 617-666) straddles the first tile's right edge (x = 640)
    for x, y in origins:
        canvas[y:y + 256, x:x + 256] = small
    faces = Tiled(create_detector("yunet"), tile=640, overlap=0.25).detect(canvas)
    assert len(faces) == 6 and faces.landmarks is not None and faces.image_size == (1800, 1200)
    centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    for x, y in origins:  # one face in each photo, where the photo has it (around 110, 60 of 256)
        inside = (np.abs(centres[:, 0] - (x + 111)) < 20) & (np.abs(centres[:, 1] - (y + 60)) < 20)
        assert inside.sum() == 1
