"""The hash split of VOC photos by duplicate group (the detector's split of ilc), torch- and scikit-learn-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskwatch.datasets import hash_split


def test_hash_split_keeps_duplicate_groups_together():
    from maskwatch.datasets import VocImage

    images = [VocImage(Path(f"{i}.jpg"), 1, 1, np.zeros((0, 4), np.float32), [], np.zeros(0, bool))
              for i in range(200)]
    groups = {str(i): "g" for i in range(0, 200, 10)}  # every tenth photo in one group
    train, val = hash_split(images, groups, 0.2)
    assert len(train) + len(val) == 200 and 20 < len(val) < 80
    sides = {im.stem in {v.stem for v in val} for im in images if im.stem in groups}
    assert len(sides) == 1


def test_ilc_split_is_pinned(shared_data):
    from maskwatch.datasets import duplicate_groups, load_voc

    ilc = shared_data / "ilc"
    if not (ilc / "annotations").is_dir():
        pytest.skip(f"{ilc} not found")
    train, val = hash_split(load_voc(ilc), duplicate_groups(ilc), 0.2)
    names = sorted(im.path.name for im in val)
    assert (len(train), len(val)) == (1274, 305)
    assert names[:3] == ["01ad721f2a8fec761f120c42711621f1.jpg", "0258d0b34e25847b932350066dfc5671.jpg",
                         "03b48d16cc1fb2cc6fb168bc5aff09f5.jpg"]
    assert sum(lbl == "mask_worn_incorrectly" for im in val for lbl in im.labels) == 91




def test_hash_split_samples_cut_faces_by_photo_like_the_detector(shared_data):
    from maskwatch.datasets import duplicate_groups, hash_split_samples, load_voc

    ilc = shared_data / "ilc"
    if not (ilc / "annotations").is_dir():
        pytest.skip(f"{ilc} not found")
    train, val = hash_split_samples(ilc, 0.2)
    _, val_photos = hash_split(load_voc(ilc), duplicate_groups(ilc), 0.2)
    assert {s.path for s in val} == {str(im.path) for im in val_photos}
    assert not {s.path for s in train} & {s.path for s in val}
    assert len(train) + len(val) == 3910 and sum(s.label == 2 for s in val) == 91
