"""Detector training data: cached VOC photos (and close-ups), augmentation, CenterNet targets, batches,
and the train / validation images of a run (`split_images`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ... import ops
from ...datasets import SourceLayout, VocImage
from ...imageio import read_image
from ...labels import LABELS
from ..augment import photometric
from ..detector_config import DetectorConfig
from .model import MEAN, STD, STRIDE

log = logging.getLogger(__name__)

MAX_OBJECTS = 256


@dataclass
class Cached:
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray  # int ids into LABELS


def cache_images(images: list[VocImage]) -> list[Cached]:
    out = []
    for im in images:
        out.append(Cached(read_image(im.path), im.boxes.astype(np.float32),
                          np.array([LABELS.index(lbl) for lbl in im.labels], np.int64)))
    return out


def closeup_cache(root: str | Path, per_class: int) -> list[Cached]:
    """Close-up photos labelled with one face each: the class from the folder name, the box from
    YuNet (calibrated to the annotation style; the top-scoring face). Photos where YuNet finds no
    face are skipped. Files of the false-face benchmark (`maskwatch.evaluation.closeups`) are never used."""
    from ...detectors import build
    from ...evaluation.closeups import BENCHMARK_PER_CLASS, closeup_files
    from ...labels import canonical_label

    det = build("yunet", min_side=320, score_threshold=0.5)  # calibrated
    out = []
    for path, folder in closeup_files(root, per_class, skip=BENCHMARK_PER_CLASS):
        label = canonical_label(folder)
        if label is None:
            continue
        image = read_image(path)
        faces = det.detect(image)
        if len(faces):
            box = faces.xyxy[int(faces.det_score.argmax())][None].astype(np.float32)
            out.append(Cached(image, box, np.array([LABELS.index(label)], np.int64)))
    return out


PAD_RGB = tuple(int(round(m * 255)) for m in MEAN)


def augment(item: Cached, size: int, rng: np.random.Generator, scale_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rescale + crop (biased to contain faces) + flip + colour + blur; returns a ``size`` square."""
    img, boxes, labels = item.image, item.boxes, item.labels
    s = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    boxes = boxes * np.float32([nw / w, nh / h, nw / w, nh / h])
    if len(boxes) and rng.uniform() < 0.7:
        b = boxes[rng.integers(len(boxes))]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x0 = int(cx - rng.uniform(0.1, 0.9) * size)
        y0 = int(cy - rng.uniform(0.1, 0.9) * size)
    else:
        x0 = int(rng.integers(min(0, nw - size), max(0, nw - size) + 1))
        y0 = int(rng.integers(min(0, nh - size), max(0, nh - size) + 1))
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = PAD_RGB
    sx1, sy1, sx2, sy2 = max(x0, 0), max(y0, 0), min(x0 + size, nw), min(y0 + size, nh)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - y0:sy2 - y0, sx1 - x0:sx2 - x0] = img[sy1:sy2, sx1:sx2]
    boxes = boxes - np.float32([x0, y0, x0, y0])
    if len(boxes):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        clipped = boxes.clip(0, size)
        carea = (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0)
        keep = (carea >= 0.5 * area) & ((clipped[:, 2:] - clipped[:, :2]).min(1) >= 2)
        boxes, labels = clipped[keep], labels[keep]
    if rng.uniform() < 0.5:
        canvas = canvas[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
    canvas = photometric(np.ascontiguousarray(canvas), rng, blur=0.2, gray=0.1)
    return canvas, boxes.astype(np.float32), labels


def targets(boxes: np.ndarray, labels: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """CenterNet targets at stride 4: Gaussian heatmap, centre cells, offsets, log sizes, labels."""
    g = size // STRIDE
    heat = np.zeros((g, g), np.float32)
    ind = np.zeros(MAX_OBJECTS, np.int64)
    reg = np.zeros((MAX_OBJECTS, 4), np.float32)
    lab = np.zeros(MAX_OBJECTS, np.int64)
    mask = np.zeros(MAX_OBJECTS, np.float32)
    ys, xs = np.mgrid[0:g, 0:g].astype(np.float32)
    order = np.argsort(-((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))) if len(boxes) else []
    for k, i in enumerate(order[:MAX_OBJECTS]):
        x1, y1, x2, y2 = boxes[i] / STRIDE
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(int(cx), g - 1), min(int(cy), g - 1)
        sx, sy = max(0.5, (x2 - x1) / 6), max(0.5, (y2 - y1) / 6)
        r = int(3 * max(sx, sy)) + 1
        xa, xb, ya, yb = max(0, ix - r), min(g, ix + r + 1), max(0, iy - r), min(g, iy + r + 1)
        gauss = np.exp(-((xs[ya:yb, xa:xb] - ix) ** 2 / (2 * sx * sx) + (ys[ya:yb, xa:xb] - iy) ** 2 / (2 * sy * sy)))
        heat[ya:yb, xa:xb] = np.maximum(heat[ya:yb, xa:xb], gauss)
        ind[k] = iy * g + ix
        reg[k] = (cx - ix, cy - iy, math.log(max(x2 - x1, 1e-3)), math.log(max(y2 - y1, 1e-3)))
        lab[k] = labels[i]
        mask[k] = 1
    return {"heat": heat[None], "ind": ind, "reg": reg, "label": lab, "mask": mask}


def make_batch(items: list[Cached], size: int, rng: np.random.Generator, cfg: DetectorConfig) -> dict[str, torch.Tensor]:
    imgs, tg = [], []
    for it in items:
        img, boxes, labels = augment(it, size, rng, cfg.scale_range)
        imgs.append(img)
        tg.append(targets(boxes, labels, size))
    x = torch.from_numpy(np.concatenate([ops.normalize(i[None], MEAN, STD) for i in imgs]))
    batch = {k: torch.from_numpy(np.stack([t[k] for t in tg])) for k in tg[0]}
    batch["input"] = x
    return batch


def split_images(cfg: DetectorConfig, layout: SourceLayout | None = None) -> tuple[list[VocImage], list[VocImage]]:
    """(train, val) images: val = the evaluation split (``layout``: where the classifier's sources lie,
    for the ``val`` / ``auto`` splits), train = every other annotated image."""
    from ...datasets import load_voc
    from ...evaluation import load_split

    desc, val = load_split(cfg.data, cfg.split, layout=layout)
    if desc == "all":  # nothing held out: validation numbers are training numbers
        log.warning("%s: split 'all' holds no images out; validating on the training images", cfg.data)
        train = [im for im in val if len(im.boxes)]
    else:
        val_paths = {im.path for im in val}
        train = [im for im in load_voc(cfg.data) if im.path not in val_paths and len(im.boxes)]
    if cfg.max_images:
        train, val = train[: cfg.max_images], val[: cfg.max_images]
    return train, val
