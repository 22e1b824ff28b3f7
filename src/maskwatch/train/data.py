"""Classifier data: sources -> samples -> group split -> cached crops -> augmented tensors.

A source is a folder tree ``<class>/<image>`` of face crops, or a Pascal VOC detection dataset
(``images/`` + ``annotations/``) whose boxes are cut into crops by `maskwatch.ops.crop_faces`,
the same function inference uses. Class names are mapped to maskwatch labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ops
from ..errors import ImageReadError
from ..imageio import IMAGE_SUFFIXES, read_image
from ..labels import LABELS, canonical_label
from ..voc import duplicate_groups, is_voc_dataset, load_voc

log = logging.getLogger(__name__)


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


def scan_folder(root: Path, name: str | None = None, recrop: bool = False) -> list[Sample]:
    """Samples of a class-per-folder tree; unknown class folders are skipped with a warning.

    ``recrop``: the images show more than the face (e.g. head and shoulders); the most confident
    YuNet face becomes the sample's box, cut like a detection at inference. Images where no face
    is found are used whole.
    """
    name = name or root.name
    dup = duplicate_groups(root)
    finder = _face_finder() if recrop else None
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


def _face_finder():
    from ..detectors import create_detector

    detector = create_detector("yunet", scale=1.0, score_threshold=0.5)

    def find(path: Path) -> tuple[float, float, float, float] | None:
        try:
            faces = detector.detect(read_image(path))
        except ImageReadError:
            return None
        if not len(faces):
            return None
        return tuple(float(v) for v in faces.xyxy[int(faces.det_score.argmax())])

    return find


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


def scan_sources(roots: list[str | Path], recrop: list[str | Path] = ()) -> list[Sample]:
    """Samples of every source (folder tree or VOC dataset); ``recrop`` folders see `scan_folder`."""
    samples: list[Sample] = []
    recrop_set = {Path(r).resolve() for r in recrop}
    for root in [*roots, *[r for r in recrop if Path(r).resolve() not in {Path(x).resolve() for x in roots}]]:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: data folder not found")
        if is_voc_dataset(root):
            found = scan_voc(root)
        else:
            found = scan_folder(root, recrop=root.resolve() in recrop_set)
        if not found:
            raise ValueError(f"{root}: no images in class folders ({', '.join(LABELS)}) or VOC annotations")
        samples.extend(found)
    return samples


def group_split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val): stratified by label, never splitting a group."""
    from sklearn.model_selection import StratifiedGroupKFold

    if val_fraction <= 0:
        return list(range(len(samples))), []
    n_splits = max(2, round(1 / val_fraction))
    labels = np.array([s.label for s in samples])
    groups = np.array([s.group for s in samples])
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train, val = next(splitter.split(np.zeros(len(samples)), labels, groups))
    return train.tolist(), val.tolist()


def context_margin(margin: float, canvas: int, size: int) -> float:
    """Crop margin for a ``canvas``-pixel cache whose centre ``size`` pixels are the nominal crop."""
    return (1 + margin) * canvas / size - 1


def load_crop(sample: Sample, canvas: int, margin: float, size: int, image: np.ndarray | None = None) -> np.ndarray:
    """The cached crop of one sample: ``canvas`` pixels square, nominal face crop in the centre.

    VOC faces: `ops.crop_faces` with the classifier margin (plus context for augmentation).
    Folder crops: the whole image is the nominal crop (square, border replicated).
    """
    image = read_image(sample.path) if image is None else image
    if sample.box is None:
        h, w = image.shape[:2]
        box, m = np.array([[0, 0, w, h]], np.float32), context_margin(0.0, canvas, size)
    else:
        box, m = np.array([sample.box], np.float32), context_margin(margin, canvas, size)
    return ops.crop_faces(image, box, canvas, m)[0]


def build_cache(samples: list[Sample], canvas: int, margin: float, size: int, cache_dir: Path | None = None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All crops as one uint8 array ``(N, canvas, canvas, 3)`` plus an ``ok`` mask.

    Unreadable images are logged and marked not ok. With ``cache_dir`` the array is stored as a
    ``.npy`` keyed by a hash of the samples and crop parameters, and reused by later runs.
    """
    from tqdm import tqdm

    key = hashlib.sha256(json.dumps([canvas, margin, size, [s.__dict__ for s in samples]]).encode()).hexdigest()[:16]
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        arr_path, ok_path = cache_dir / f"crops-{key}.npy", cache_dir / f"crops-{key}.ok.npy"
        if arr_path.is_file() and ok_path.is_file():
            return np.load(arr_path, mmap_mode="r"), np.load(ok_path)
    crops = np.zeros((len(samples), canvas, canvas, 3), np.uint8)
    ok = np.ones(len(samples), bool)
    order = sorted(range(len(samples)), key=lambda i: samples[i].path)  # read each image once
    current, image = None, None
    for i in tqdm(order, desc="caching crops", unit="crop", disable=not progress):
        s = samples[i]
        try:
            if s.path != current:
                current, image = s.path, read_image(s.path)
            crops[i] = load_crop(s, canvas, margin, size, image)
        except ImageReadError as exc:
            log.warning("skipped: %s", exc)
            current, image, ok[i] = None, None, False
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(arr_path, crops)
        np.save(ok_path, ok)
    return crops, ok


def face_size(sample: Sample) -> float:
    """Shorter side of the face box in source pixels (inf for whole-image crops)."""
    if sample.box is None:
        return float("inf")
    x1, y1, x2, y2 = sample.box
    return min(x2 - x1, y2 - y1)


def samples_from_rows(rows: list[dict]) -> list[Sample]:
    """Samples back from a run's ``split.json`` rows."""
    return [Sample(r["path"], LABELS.index(r["label"]), r["group"], r["source"],
                   tuple(r["box"]) if r.get("box") else None) for r in rows]


def nominal_crops(samples: list[Sample], size: int, margin: float, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Crops exactly as inference cuts them (no context), plus the ``ok`` mask."""
    return build_cache(samples, size, margin, size, None, progress)
