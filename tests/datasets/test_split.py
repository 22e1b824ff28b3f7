"""The evaluation split is the default classifier's validation side, recomputed from the data."""

from __future__ import annotations

import hashlib
import json

import pytest

from maskwatch.cli.layout import SHARED_LAYOUT
from maskwatch.datasets import (SourceLayout, classifier_split_images, duplicate_groups, layout_split_paths, load_voc,
                                resolve_split, split_file_images)
from maskwatch.evaluation import load_split

pytest.importorskip("sklearn", reason="scikit-learn computes the group split")


def test_classifier_split_partitions_fmd_by_group(shared_data):
    fmd = shared_data / "fmd"
    val = classifier_split_images(fmd, SHARED_LAYOUT, "val")
    train = classifier_split_images(fmd, SHARED_LAYOUT, "train")
    assert not set(val) & set(train)
    annotated = {im.path.resolve() for im in load_voc(fmd) if len(im.boxes)}
    assert {p.resolve() for p in val} | {p.resolve() for p in train} == annotated  # ../shared may be a link
    assert 0.15 < len(val) / len(annotated) < 0.3
    groups = duplicate_groups(fmd)
    val_groups = {groups.get(p.stem, p.stem) for p in val}
    train_groups = {groups.get(p.stem, p.stem) for p in train}
    assert not val_groups & train_groups


def test_classifier_split_is_the_one_the_shipped_models_were_trained_on(shared_data):
    # The split is recomputed by scikit-learn's StratifiedGroupKFold: scikit-learn 1.7 puts another
    # 123 images on the validation side, so shipped models would be scored on their own training
    # photos. pyproject pins scikit-learn >= 1.8; this catches any later change of the algorithm.
    val = classifier_split_images(shared_data / "fmd", SHARED_LAYOUT, "val")
    names = "\n".join(p.name for p in val)
    assert len(val) == 138
    assert hashlib.sha256(names.encode()).hexdigest()[:16] == "579e64161180d044"


def test_layout_split_paths_hold_out_the_crops_of_every_source(shared_data):
    # what bench_watch builds its video from: faces the shipped classifier never trained on
    val = layout_split_paths(shared_data, SHARED_LAYOUT, "val")
    train = layout_split_paths(shared_data, SHARED_LAYOUT, "train")
    assert not val & train
    fmd = shared_data / "fmd"
    assert sorted(p for p in val if p.parent.parent == fmd) == classifier_split_images(fmd, SHARED_LAYOUT, "val")
    for source in ("crops/prajnasb", "crops/maskedface-net"):
        files = {f for f in (shared_data / source).glob("*/*.jpg")}
        held = files & val
        assert held and files & train and held | (files & train) == files
        assert 0.1 < len(held) / len(files) < 0.35


def test_auto_split_is_val_on_the_shared_layout(shared_data):
    desc, paths = resolve_split(shared_data / "fmd", "auto", SHARED_LAYOUT)
    assert desc.startswith("classifier val")
    assert resolve_split(shared_data / "fmd", "auto") == ("all", None)  # the library knows no layout
    assert paths == classifier_split_images(shared_data / "fmd", SHARED_LAYOUT, "val")


def test_split_file_and_all(tmp_path, shared_data):
    fmd = shared_data / "fmd"
    images = load_voc(fmd)[:3]
    rows = [{"path": str(im.path), "label": "with_mask"} for im in images]
    rows.append({"path": "/elsewhere/crops/with_mask/1.jpg", "label": "with_mask"})  # other sources are ignored
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": rows}))
    assert split_file_images(split, fmd) == sorted(im.path for im in images)
    desc, chosen = load_split(fmd, str(split))
    assert [im.path for im in chosen] == [im.path for im in images]
    assert resolve_split(fmd, "all") == ("all", None)


def test_split_errors(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    with pytest.raises(FileNotFoundError, match="--split all"):
        classifier_split_images(tmp_path, SHARED_LAYOUT)
    assert resolve_split(tmp_path, "auto", SHARED_LAYOUT) == ("all", None)  # no classifier sources next to it
    with pytest.raises(ValueError, match="needs the classifier's source layout"):
        resolve_split(tmp_path, "val")
    other = SourceLayout(data=(tmp_path.name,))  # a layout whose only source is this set: its own split
    assert other.sources(tmp_path) == ([tmp_path.resolve()], [])
    with pytest.raises(FileNotFoundError, match="not a split file"):
        resolve_split(tmp_path, "nope.json")
    with pytest.raises(FileNotFoundError, match="not a Pascal VOC"):
        load_split(tmp_path / "missing")
