"""Pascal VOC detection datasets (``DIR/images`` + ``DIR/annotations/*.xml``), torch-free.

Used by classifier training (boxes cut into face crops) and by detection evaluation.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import canonical_label


@dataclass
class VocImage:
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32, clipped to the image
    labels: list[str]  # maskwatch labels
    difficult: np.ndarray  # (N,) bool

    @property
    def stem(self) -> str:
        return self.path.stem


def is_voc_dataset(root: str | Path) -> bool:
    root = Path(root)
    return (root / "annotations").is_dir() and (root / "images").is_dir()


def parse_annotation(xml_path: Path, images_dir: Path) -> VocImage:
    """One annotation file; boxes in maskwatch's continuous pixel coordinates (``x1 = 0`` is the
    left edge of the first pixel, ``x2 = W`` the right edge of the last).

    Pascal VOC coordinates are 1-based inclusive pixel indices: ``xmin = 1, xmax = W`` is the whole
    width, so the box is ``(xmin - 1, ymin - 1, xmax, ymax)`` (the conversion of detectron2's VOC
    loader). fmd follows it (``xmin`` is never 0, ``xmax`` reaches ``W``), and a flip test shows it:
    taking the numbers as edges puts the annotated centres 0.6 px right of where two independent
    flip-symmetric detectors place them, and 0.6 px left on mirrored photos.
    """
    tree = ET.parse(xml_path).getroot()
    filename = tree.findtext("filename") or (xml_path.stem + ".jpg")
    path = images_dir / filename
    if not path.exists():
        alt = sorted(images_dir.glob(xml_path.stem + ".*"))
        path = alt[0] if alt else path
    w = int(float(tree.findtext("size/width") or 0))
    h = int(float(tree.findtext("size/height") or 0))
    boxes, labels, difficult = [], [], []
    for obj in tree.iter("object"):
        label = canonical_label(obj.findtext("name") or "")
        if label is None:
            continue
        bb = obj.find("bndbox")
        x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        x1, y1 = x1 - 1, y1 - 1  # 1-based inclusive pixel indices -> pixel edges (see `parse_annotation`)
        if w and h:  # a few source boxes end 1 px outside the image
            x1, x2 = np.clip([x1, x2], 0, w)
            y1, y2 = np.clip([y1, y2], 0, h)
        if x2 <= x1 or y2 <= y1:
            continue
        boxes.append([x1, y1, x2, y2])
        labels.append(label)
        difficult.append(obj.findtext("difficult") == "1")
    return VocImage(path, w, h, np.asarray(boxes, np.float32).reshape(-1, 4), labels, np.asarray(difficult, bool))


def load_voc(root: str | Path) -> list[VocImage]:
    """All annotated images of a VOC dataset, sorted by file name."""
    root = Path(root)
    return [parse_annotation(x, root / "images") for x in sorted((root / "annotations").glob("*.xml"))]


def duplicate_groups(root: str | Path) -> dict[str, str]:
    """Map image stem -> group id from ``duplicates.json`` (lists of stems that must stay together)."""
    path = Path(root) / "duplicates.json"
    if not path.is_file():
        return {}
    mapping: dict[str, str] = {}
    for group in json.loads(path.read_text()):
        names = [Path(n).stem for n in group]
        # union with any group already seen
        rep = next((mapping[n] for n in names if n in mapping), min(names))
        for n in names:
            mapping[n] = rep
    return mapping
