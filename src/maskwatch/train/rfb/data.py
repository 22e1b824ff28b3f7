"""Training data of the RFB detector: photos cached in memory, sampled class-balanced, augmented
(face-size-driven rescale, crop, mosaic, copy-paste of rare faces, flip, colour, blur) and matched
to the priors of `maskwatch.rfb`.

Face size is drawn independently of the class: every training image is rescaled so that one face,
picked with the class-balanced weights, gets a size drawn log-uniformly from ``face_sizes``. So a
close-up of an incorrectly worn mask appears as small as a crowd face, and size is no class cue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ... import ops
from ...datasets import VocImage
from ...detectors import rfb
from ...imageio import read_image
from ...labels import LABELS
from ..augment import photometric
from .config import AugmentConfig

#: Canvas colour outside the photo: the mean the network subtracts (127 in (x - 127) / 128).
PAD_VALUE = 127


@dataclass
class Sample:
    image: np.ndarray  # RGB uint8
    boxes: np.ndarray  # (N, 4) float32 pixels
    labels: np.ndarray  # (N,) int64: 1 + index into LABELS (0 is background)
    source: str = ""


def box_style_transform(boxes: np.ndarray, src: tuple[float, float, float, float],
                        dst: tuple[float, float, float, float]) -> np.ndarray:
    """Move boxes from one annotation style to another, both given as calibrations ``(dx, dy, sw, sh)``
    of the same reference detector (`maskwatch.calibration.fit_box_calibration`): undo ``src``, apply ``dst``."""
    b = ops.as_boxes(boxes)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    rw, rh = w / src[2], h / src[3]  # the reference detector's box
    cx = (b[:, 0] + b[:, 2]) / 2 + (dst[0] - src[0]) * rw
    cy = (b[:, 1] + b[:, 3]) / 2 + (dst[1] - src[1]) * rh
    nw, nh = rw * dst[2], rh * dst[3]
    return np.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], 1).astype(np.float32)


def load_samples(images: list[VocImage], source: str = "", style: tuple | None = None) -> list[Sample]:
    """Read annotated photos into memory; ``style = (src, dst)`` converts their boxes (`box_style_transform`)."""
    out = []
    for im in images:
        boxes = im.boxes.astype(np.float32)
        if style is not None and len(boxes):
            boxes = ops.clip_boxes(box_style_transform(boxes, *style), im.width or 1 << 30, im.height or 1 << 30)
        labels = np.array([1 + LABELS.index(lbl) for lbl in im.labels], np.int64)
        out.append(Sample(read_image(im.path), boxes, labels, source))
    return out


def class_weights(samples: list[Sample], power: float = 0.5) -> np.ndarray:
    """Per-class sampling weight ``(count_max / count_c) ** power`` (index 0 unused)."""
    counts = np.bincount(np.concatenate([s.labels for s in samples] + [np.zeros(0, np.int64)]),
                         minlength=1 + len(LABELS)).astype(np.float64)
    counts[0] = 0
    w = np.zeros_like(counts)
    present = counts > 0
    w[present] = (counts[present].max() / counts[present]) ** power
    return w


def image_weights(samples: list[Sample], weights: np.ndarray) -> np.ndarray:
    """Sampling probability of each photo: the weight of its rarest class."""
    p = np.array([weights[s.labels].max() if len(s.labels) else weights[weights > 0].min() for s in samples])
    return p / p.sum()


class Augmenter:
    """Makes training inputs of ``size x size`` pixels from the cached samples."""

    def __init__(self, samples: list[Sample], cfg: AugmentConfig | None = None, balance_power: float = 0.5):
        self.samples = samples
        self.cfg = cfg or AugmentConfig()
        self.weights = class_weights(samples, balance_power)
        self.p = image_weights(samples, self.weights)
        rare = int(np.argmax(self.weights))
        # faces of the rarest class, with some context, for copy-paste
        self.pastes = [(i, j) for i, s in enumerate(samples) for j in np.nonzero(s.labels == rare)[0]
                       if min(s.boxes[j, 2] - s.boxes[j, 0], s.boxes[j, 3] - s.boxes[j, 1]) >= 12]

    def pick(self, rng: np.random.Generator) -> Sample:
        return self.samples[int(rng.choice(len(self.samples), p=self.p))]

    def crop(self, s: Sample, w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A ``w x h`` crop of one rescaled photo, centred near a class-balanced anchor face."""
        img, boxes, labels = s.image, s.boxes, s.labels
        if len(boxes):
            fw = self.weights[labels]
            a = int(rng.choice(len(boxes), p=fw / fw.sum()))
            side = math.sqrt(max(1.0, float((boxes[a, 2] - boxes[a, 0]) * (boxes[a, 3] - boxes[a, 1]))))
            lo, hi = self.cfg.face_sizes
            scale = math.exp(rng.uniform(math.log(lo), math.log(hi))) / side
            scale = min(scale, 4 * max(w, h) / max(img.shape[:2]))  # never blow a photo up beyond reason
        else:
            a, scale = -1, rng.uniform(0.5, 1.5) * max(w, h) / max(img.shape[:2])
        ih, iw = img.shape[:2]
        nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
        if a >= 0 and rng.uniform() < 0.8:
            cx, cy = (boxes[a, 0] + boxes[a, 2]) / 2 * nw / iw, (boxes[a, 1] + boxes[a, 3]) / 2 * nh / ih
            x0, y0 = int(cx - rng.uniform(0.15, 0.85) * w), int(cy - rng.uniform(0.15, 0.85) * h)
        else:
            x0 = int(rng.integers(min(0, nw - w), max(0, nw - w) + 1))
            y0 = int(rng.integers(min(0, nh - h), max(0, nh - h) + 1))
        # resize only the part of the photo that lands in the crop
        sx1, sy1 = max(x0, 0), max(y0, 0)
        sx2, sy2 = min(x0 + w, nw), min(y0 + h, nh)
        canvas = np.full((h, w, 3), PAD_VALUE, np.uint8)
        if sx2 > sx1 and sy2 > sy1:
            # source rectangle in the original photo (one pixel of slack for interpolation)
            ox1, oy1 = int(sx1 / scale), int(sy1 / scale)
            ox2, oy2 = min(iw, int(math.ceil(sx2 / scale)) + 1), min(ih, int(math.ceil(sy2 / scale)) + 1)
            part = img[oy1:oy2, ox1:ox2]
            pw, ph = max(1, round((ox2 - ox1) * scale)), max(1, round((oy2 - oy1) * scale))
            part = cv2.resize(part, (pw, ph), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
            px, py = round(ox1 * scale) - x0, round(oy1 * scale) - y0
            dx1, dy1 = max(px, 0), max(py, 0)
            dx2, dy2 = min(px + pw, w), min(py + ph, h)
            if dx2 > dx1 and dy2 > dy1:
                canvas[dy1:dy2, dx1:dx2] = part[dy1 - py:dy2 - py, dx1 - px:dx2 - px]
        b = boxes * np.float32([nw / iw, nh / ih, nw / iw, nh / ih]) - np.float32([x0, y0, x0, y0])
        return canvas, *_keep_visible(b, labels, w, h)

    def paste(self, canvas: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Paste one rare-class face (with 15% context) at a random free place and size."""
        if not self.pastes:
            return canvas, boxes, labels
        i, j = self.pastes[int(rng.integers(len(self.pastes)))]
        s = self.samples[i]
        x1, y1, x2, y2 = s.boxes[j]
        mx, my = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
        cx1, cy1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
        cx2, cy2 = int(min(s.image.shape[1], x2 + mx)), int(min(s.image.shape[0], y2 + my))
        patch = s.image[cy1:cy2, cx1:cx2]
        h, w = canvas.shape[:2]
        side = math.exp(rng.uniform(math.log(self.cfg.face_sizes[0] * 1.5), math.log(min(self.cfg.face_sizes[1], h / 2))))
        k = side / max(1.0, math.sqrt((x2 - x1) * (y2 - y1)))
        pw, ph = max(2, round(patch.shape[1] * k)), max(2, round(patch.shape[0] * k))
        if pw >= w or ph >= h:
            return canvas, boxes, labels
        for _ in range(5):
            px, py = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
            new = np.float32([[px + (x1 - cx1) * k, py + (y1 - cy1) * k, px + (x2 - cx1) * k, py + (y2 - cy1) * k]])
            region = np.float32([[px, py, px + pw, py + ph]])
            if not len(boxes) or ops.box_iou(region, boxes).max() == 0:
                patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
                canvas[py:py + ph, px:px + pw] = patch
                return canvas, np.concatenate([boxes, new]), np.concatenate([labels, s.labels[j:j + 1]])
        return canvas, boxes, labels

    def __call__(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One ``size x size`` training input: ``(RGB uint8, boxes px, labels)``."""
        c = self.cfg
        if rng.uniform() < c.mosaic:
            half = size // 2
            canvas = np.empty((size, size, 3), np.uint8)
            all_boxes, all_labels = [], []
            for qy in (0, 1):
                for qx in (0, 1):
                    img, b, lab = self.crop(self.pick(rng), half, half, rng)
                    canvas[qy * half:(qy + 1) * half, qx * half:(qx + 1) * half] = img
                    all_boxes.append(b + np.float32([qx * half, qy * half] * 2))
                    all_labels.append(lab)
            boxes, labels = np.concatenate(all_boxes), np.concatenate(all_labels)
        else:
            canvas, boxes, labels = self.crop(self.pick(rng), size, size, rng)
        if rng.uniform() < c.paste:
            canvas, boxes, labels = self.paste(canvas, boxes, labels, rng)
        if rng.uniform() < c.flip:
            canvas = np.ascontiguousarray(canvas[:, ::-1])
            boxes = boxes.copy()
            boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
        return photometric(canvas, rng, c.blur, c.gray), boxes.astype(np.float32), labels


def _keep_visible(boxes: np.ndarray, labels: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip to the crop; keep faces with at least 60% of their area and 3 px inside."""
    if not len(boxes):
        return boxes.reshape(0, 4), labels
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = ops.clip_boxes(boxes, w, h)
    carea = ops.box_area(clipped)
    keep = (carea >= 0.6 * area) & ((clipped[:, 2:] - clipped[:, :2]).min(1) >= 3)
    return clipped[keep], labels[keep]


def match(boxes: np.ndarray, labels: np.ndarray, height: int, width: int,
          iou_threshold: float = 0.35, assign: str = "iou") -> tuple[np.ndarray, np.ndarray]:
    """SSD targets for one input: each prior's label (0 = background) and box offsets.

    ``assign="iou"``: a prior takes the face it overlaps most when their IoU reaches ``iou_threshold``;
    every face also takes its best prior, so that no face goes unlearnt (the upstream `assign_priors`).
    ``"atss"``: each face's positives are chosen among its nearest priors by an IoU threshold of its
    own (`atss_positives`), so small and large faces get closer numbers of positives."""
    prior = rfb.priors(height, width)
    n = len(prior)
    if not len(boxes):
        return np.zeros(n, np.int64), np.zeros((n, 4), np.float32)
    gt = boxes / np.float32([width, height, width, height])
    iou = ops.box_iou(gt, rfb.to_corners(prior))  # (faces, priors)
    if assign == "atss":
        iou = np.where(atss_positives(gt, prior, iou, height, width), iou, 0.0)
        iou_threshold = 1e-6
    elif assign != "iou":
        raise ValueError(f"assign must be 'iou' or 'atss', not {assign!r}")
    best_face = iou.argmax(0)
    best_iou = iou[best_face, np.arange(n)]
    best_prior = iou.argmax(1)
    best_face[best_prior] = np.arange(len(gt))
    best_iou[best_prior] = 2.0
    lab = labels[best_face].copy()
    lab[best_iou < iou_threshold] = 0
    return lab.astype(np.int64), rfb.encode(gt[best_face], prior)


def atss_positives(gt: np.ndarray, prior: np.ndarray, iou: np.ndarray, height: int, width: int,
                   k: int = 9) -> np.ndarray:
    """ATSS (Zhang et al., CVPR 2020): (faces, priors) mask of positives. Per level the ``k`` priors
    whose centres are nearest a face's centre are its candidates; those with an IoU of at least the
    candidates' mean + standard deviation, and their centre inside the face, are positives."""
    centre = (gt[:, None, :2] + gt[:, None, 2:]) / 2
    dist = np.hypot((centre[..., 0] - prior[None, :, 0]) * width, (centre[..., 1] - prior[None, :, 1]) * height)
    cand = np.zeros(iou.shape, bool)
    rows = np.arange(len(gt))[:, None]
    start = 0
    for (fh, fw), per_cell in zip(rfb.feature_sizes(height, width), rfb.PRIORS_PER_CELL):
        stop = start + fh * fw * per_cell
        kk = min(k, stop - start)
        cand[rows, start + np.argpartition(dist[:, start:stop], kk - 1, axis=1)[:, :kk]] = True
        start = stop
    ci = np.where(cand, iou, np.nan)
    threshold = np.nanmean(ci, 1) + np.nanstd(ci, 1)
    inside = ((prior[None, :, 0] > gt[:, None, 0]) & (prior[None, :, 0] < gt[:, None, 2])
              & (prior[None, :, 1] > gt[:, None, 1]) & (prior[None, :, 1] < gt[:, None, 3]))
    return cand & inside & (iou >= threshold[:, None])
