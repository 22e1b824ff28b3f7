import json

import numpy as np
import pytest

from maskwatch.labels import LABELS
from maskwatch.train import data as D


@pytest.mark.parametrize("stem, group", [
    ("12", "12"), ("12-with-mask", "12"), ("00003_Mask", "00003"), ("01001_Mask_Mouth_Chin", "01001"),
    ("train_10", "train_10"), ("alice_with_mask", "alice"), ("alice", "alice"),
])
def test_group_key(stem, group):
    assert D.group_key(stem) == group


def _tree(root, files):
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    return root


def test_scan_folder_maps_labels_and_skips_unknown(tmp_path):
    _tree(tmp_path / "src", ["with_mask/1-with-mask.jpg", "without_mask/1.jpg", "mask_weared_incorrect/7_Mask_Chin.jpg",
                             "other/x.jpg", "with_mask/readme.txt"])
    samples = D.scan_folder(tmp_path / "src")
    assert sorted((LABELS[s.label], s.group) for s in samples) == [
        ("mask_worn_incorrectly", "src/7"), ("with_mask", "src/1"), ("without_mask", "src/1")]


def test_split_never_separates_a_group(tmp_path):
    files = [f"with_mask/{i}-with-mask.jpg" for i in range(40)] + [f"without_mask/{i}.jpg" for i in range(40)]
    files += [f"mask_weared_incorrect/{i:05d}_Mask_Chin.jpg" for i in range(20)]
    samples = D.scan_folder(_tree(tmp_path / "s", files))
    train, val = D.group_split(samples, 0.2, seed=0)
    assert len(train) + len(val) == len(samples) and val
    assert not {samples[i].group for i in train} & {samples[i].group for i in val}
    assert {samples[i].label for i in val} == {0, 1, 2}  # stratified
    assert D.group_split(samples, 0.2, seed=0) == (train, val)  # reproducible


def test_voc_source_uses_duplicate_groups(tiny_sources, tmp_path):
    import shutil

    voc = tmp_path / "voc"
    shutil.copytree(tiny_sources["voc"], voc, symlinks=True)
    stems = sorted(p.stem for p in (voc / "images").glob("*.jpg"))
    (voc / "duplicates.json").write_text(json.dumps([[stems[0], stems[1]]]))
    samples = D.scan_sources([voc])
    assert all(s.box is not None for s in samples)
    groups = {s.path.split("/")[-1][:-4]: s.group for s in samples}
    assert groups[stems[0]] == groups[stems[1]]


def test_cached_crop_centre_equals_inference_crop(tiny_sources):
    """The training cache holds context around the face; its centre is exactly what inference cuts."""
    from maskwatch import ops, read_image

    s = max(D.scan_sources([tiny_sources["voc"]]), key=D.face_size)  # sub-pixel rounding matters less
    canvas = D.load_crop(s, canvas=160, margin=0.2, size=128)
    centre = canvas[16:144, 16:144].astype(int)
    direct = ops.crop_faces(read_image(s.path), np.array([s.box]), 128, 0.2)[0].astype(int)
    assert np.abs(centre - direct).mean() < 6


def test_build_cache_skips_unreadable(tmp_path, tiny_sources):
    good = D.scan_sources([tiny_sources["crops"]])[:2]
    bad = D.Sample(str(tmp_path / "missing.jpg"), 0, "g", "s")
    crops, ok = D.build_cache([*good, bad], 32, 0.2, 32, cache_dir=tmp_path / "c", progress=False)
    assert crops.shape == (3, 32, 32, 3) and ok.tolist() == [True, True, False]
    again, ok2 = D.build_cache([*good, bad], 32, 0.2, 32, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(again, crops)
