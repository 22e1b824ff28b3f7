"""Labelled face sources, torch-free: class-per-folder crop trees and VOC detection sets -> `Sample`s.

A sample is one face: its file, label, group (samples of a group never straddle a train /
validation split: one person, one photo and its near-duplicates) and source, plus its box in a
VOC photo (``None``: the whole image is the face).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..imageio import IMAGE_SUFFIXES
from ..labels import LABELS, canonical_label
from .voc import duplicate_groups, is_voc_dataset, load_voc

log = logging.getLogger(__name__)

#: image file -> the face box to use, or None
FaceFinder = Callable[[Path], "tuple[float, float, float, float] | None"]


@dataclass(frozen=True)
class Sample:
    path: str
    label: int  # index into LABELS
    group: str  # samples of one group never straddle the train/val split
    source: str  # dataset name (folder name)
    box: tuple[float, float, float, float] | None = None  # None: the whole image is the face


_MASK_SUFFIX = re.compile(r"[-_ ]?(with[-_ ]?mask|mask(ed)?|without[-_ ]?mask|no[-_ ]?mask)$", re.I)


def group_key(stem: str) -> str:
    """Group of a crop file name: a leading number (person / FFHQ id), else the stem without a
    mask suffix. ``12.jpg``/``12-with-mask.jpg`` -> ``12``; ``00003_Mask_Chin.jpg`` -> ``00003``."""
    m = re.match(r"^(\d+)(?=$|[-_ ])", stem)
    if m:
        return m.group(1)
    return _MASK_SUFFIX.sub("", stem) or stem


def scan_folder(root: Path, name: str | None = None, finder: FaceFinder | None = None) -> list[Sample]:
    """Samples of a class-per-folder tree; unknown class folders are skipped with a warning.

    ``finder``: the images show more than the face (e.g. head and shoulders); the box ``finder``
    returns for an image file (training passes YuNet's most confident face) becomes the sample's
    box, cut like a detection at inference. Images where it finds no face are used whole.
    """
    name = name or root.name
    dup = duplicate_groups(root)
    samples = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = canonical_label(class_dir.name)
        if label is None:
            log.warning("%s: folder %r is not a mask class, skipped", root, class_dir.name)
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                group = dup.get(path.stem, group_key(path.stem))
                box = finder(path) if finder else None
                samples.append(Sample(str(path), LABELS.index(label), f"{name}/{group}", name, box))
    return samples


def scan_voc(root: Path, name: str | None = None) -> list[Sample]:
    """One sample per annotated face of a VOC dataset, grouped by (duplicate group of) image."""
    name = name or root.name
    dup = duplicate_groups(root)
    samples = []
    for im in load_voc(root):
        group = f"{name}/{dup.get(im.stem, im.stem)}"
        for box, label in zip(im.boxes, im.labels):
            samples.append(Sample(str(im.path), LABELS.index(label), group, name, tuple(float(v) for v in box)))
    return samples


def scan_sources(roots: list[str | Path], recrop: list[str | Path] = (), finder: FaceFinder | None = None
                 ) -> list[Sample]:
    """Samples of every source (folder tree or VOC dataset); ``recrop`` folders get ``finder``'s
    boxes (`scan_folder`)."""
    samples: list[Sample] = []
    recrop_set = {Path(r).resolve() for r in recrop}
    for root in [*roots, *[r for r in recrop if Path(r).resolve() not in {Path(x).resolve() for x in roots}]]:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: data folder not found")
        if is_voc_dataset(root):
            found = scan_voc(root)
        else:
            found = scan_folder(root, finder=finder if root.resolve() in recrop_set else None)
        if not found:
            raise ValueError(f"{root}: no images in class folders ({', '.join(LABELS)}) or VOC annotations")
        samples.extend(found)
    return samples
