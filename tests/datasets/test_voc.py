"""`maskwatch.datasets.voc`: Pascal VOC annotations -> boxes in pixel-edge coordinates."""

from __future__ import annotations

import numpy as np

from maskwatch.datasets import is_voc_dataset, load_voc, parse_annotation

XML = """<annotation><filename>{name}</filename><size><width>40</width><height>30</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = ("<object><name>{label}</name><difficult>{difficult}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
       "<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>")


def _write(root, name, objects):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images" / f"{name}.jpg").write_bytes(b"")
    body = "".join(OBJ.format(label=lab, b=b, difficult=d) for lab, b, d in objects)
    (root / "annotations" / f"{name}.xml").write_text(XML.format(name=f"{name}.jpg", objects=body))
    return root / "annotations" / f"{name}.xml"


def test_one_based_inclusive_indices_become_pixel_edges(tmp_path):
    xml = _write(tmp_path, "a", [("with_mask", (1, 1, 40, 30), 0), ("without_mask", (11, 6, 20, 15), 0)])
    im = parse_annotation(xml, tmp_path / "images")
    # the whole image, and a 10x10 box whose first pixel is index 10 (0-based)
    np.testing.assert_array_equal(im.boxes, [[0, 0, 40, 30], [10, 5, 20, 15]])
    assert im.labels == ["with_mask", "without_mask"] and (im.width, im.height) == (40, 30)


def test_source_labels_clipping_and_difficult(tmp_path):
    xml = _write(tmp_path, "b", [("mask_weared_incorrect", (30, 20, 41, 31), 1), ("dog", (1, 1, 5, 5), 0),
                                 ("with_mask", (8, 8, 7, 9), 0)])
    im = parse_annotation(xml, tmp_path / "images")
    # 1 px outside the image is clipped; unknown classes and empty boxes are dropped
    np.testing.assert_array_equal(im.boxes, [[29, 19, 40, 30]])
    assert im.labels == ["mask_worn_incorrectly"] and im.difficult.tolist() == [True]


def test_load_voc_sorted_and_layout_check(tmp_path):
    _write(tmp_path, "z", [("with_mask", (1, 1, 5, 5), 0)])
    _write(tmp_path, "a", [])
    assert is_voc_dataset(tmp_path) and not is_voc_dataset(tmp_path / "images")
    assert [im.stem for im in load_voc(tmp_path)] == ["a", "z"]
