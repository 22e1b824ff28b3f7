"""Classifier data: sources -> samples -> group split (`maskwatch.datasets`) -> cached crops.

A source is a folder tree ``<class>/<image>`` of face crops, or a Pascal VOC detection dataset
(``images/`` + ``annotations/``) whose boxes are cut into crops by `maskwatch.ops.crop_faces`,
the same function inference uses. Class names are mapped to maskwatch labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from .. import datasets, ops
from ..datasets import Sample, group_key, group_split, hash_split_samples, scan_folder, scan_voc  # noqa: F401  (the data API)
from ..errors import ImageReadError
from ..imageio import read_image
from ..labels import LABELS

log = logging.getLogger(__name__)


def face_finder():
    """The recrop face finder of `scan_sources`: YuNet's most confident face of an image file."""
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


def scan_sources(roots: list[str | Path], recrop: list[str | Path] = ()) -> list[Sample]:
    """`maskwatch.datasets.scan_sources` with YuNet as the face finder of the ``recrop`` folders."""
    return datasets.scan_sources(roots, recrop, finder=face_finder() if recrop else None)


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
