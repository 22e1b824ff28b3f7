"""Face detectors behind one interface, created by name.

* ``yunet`` — OpenCV's YuNet CNN (`cv2.FaceDetectorYN`): fast, accurate, landmarks.
* ``ssd`` — OpenCV's ResNet-10 SSD, the face detector of the classic mask tutorials.
* ``maskwatch`` — maskwatch's own face + mask detector (`maskwatch.detection_model`).
* ``yunet+maskwatch`` (`maskwatch.load`'s default) — both, their faces merged (`maskwatch.ensemble`):
  finds the most faces.
* ``haar`` — the Viola-Jones Haar cascade shipped with OpenCV 4.x: fastest, least accurate,
  misses most masked and small faces; kept to reproduce the tutorials' results.

Every detector takes an RGB uint8 image and returns `Faces` in the image's pixel coordinates.
``scale`` resizes the image before detection: > 1 finds smaller faces at a higher cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from . import ops, registry
from .errors import UnknownNameError
from .faces import Faces
from .imageio import as_rgb_array


class FaceDetector(ABC):
    """Finds faces in an RGB uint8 image."""

    name: str = "detector"

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.5, max_side: int = 4096, min_side: int = 0):
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)
        self.min_side = int(min_side)  # upscale small images until their longer side is this long

    def input_scale(self, height: int, width: int) -> float:
        """The scale applied to an image of this size: ``scale``, raised so that the longer side
        reaches ``min_side``, lowered so that it stays within ``max_side``."""
        long_side = max(height, width)
        return min(max(self.scale, self.min_side / long_side), self.max_side / long_side)

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        scale = self.input_scale(h, w)
        if abs(scale - 1.0) > 1e-6:
            interp = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
            resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
        else:
            resized = image
        faces = self._detect(resized)
        if len(faces) and resized is not image:
            sx, sy = w / resized.shape[1], h / resized.shape[0]
            xyxy = faces.xyxy * np.array([sx, sy, sx, sy], np.float32)
            lms = None if faces.landmarks is None else faces.landmarks * np.array([sx, sy], np.float32)
            faces = Faces(xyxy=xyxy, det_score=faces.det_score, landmarks=lms)
        xyxy = ops.clip_boxes(faces.xyxy, w, h)
        keep = ops.box_area(xyxy) > 0
        return Faces(
            xyxy=xyxy[keep],
            det_score=faces.det_score[keep],
            landmarks=None if faces.landmarks is None else faces.landmarks[keep],
            image_size=(w, h),
        )

    __call__ = detect

    @abstractmethod
    def _detect(self, image: np.ndarray) -> Faces:
        """Detect on an RGB image already at detection scale."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(scale={self.scale}, min_side={self.min_side}, "
                f"score_threshold={self.score_threshold})")


class YuNetDetector(FaceDetector):
    """OpenCV YuNet (`cv2.FaceDetectorYN`). Returns 5 landmarks per face."""

    name = "yunet"

    def __init__(
        self,
        scale: float = 1.0,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        model_path: str | Path | None = None,
        **kw: Any,
    ):
        super().__init__(scale=scale, score_threshold=score_threshold, **kw)
        path = str(model_path or registry.resolve("yunet"))
        self._net = cv2.FaceDetectorYN.create(path, "", (320, 320), self.score_threshold, nms_threshold, top_k)

    def _detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if rows is None or len(rows) == 0:
            return Faces.empty()
        rows = np.asarray(rows, np.float32)
        rows = rows[np.isfinite(rows).all(1)]  # YuNet can emit NaN boxes on some close-up photos
        if not len(rows):
            return Faces.empty()
        xyxy = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2])
        return Faces(xyxy=xyxy, det_score=rows[:, 14], landmarks=rows[:, 4:14].reshape(-1, 5, 2))


class SSDDetector(FaceDetector):
    """OpenCV's ResNet-10 SSD (Caffe), as in the classic face-mask tutorials.

    The tutorials resize the whole frame to 300x300. The network is fully convolutional, so
    ``scale`` > 1 feeds it a larger square input (``300 * scale``), which finds smaller faces.
    """

    name = "ssd"

    def __init__(self, scale: float = 1.0, score_threshold: float = 0.5, **kw: Any):
        super().__init__(scale=1.0, score_threshold=score_threshold, **kw)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.input_side = max(32, round(300 * scale))
        self.scale = float(scale)
        self._net = cv2.dnn.readNetFromCaffe(str(registry.resolve("ssd-prototxt")), str(registry.resolve("ssd")))

    def detect(self, image: np.ndarray) -> Faces:
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        blob = cv2.dnn.blobFromImage(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 1.0, (self.input_side,) * 2, (104.0, 177.0, 123.0)
        )
        self._net.setInput(blob)
        out = self._net.forward()[0, 0]  # (N, 7): image id, class, score, x1, y1, x2, y2 (normalised)
        out = out[out[:, 2] >= self.score_threshold]
        xyxy = ops.clip_boxes(out[:, 3:7] * np.array([w, h, w, h], np.float32), w, h)
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2])
        keep = ops.box_area(xyxy) > 0
        return Faces(xyxy=xyxy[keep], det_score=out[keep, 2], image_size=(w, h))

    def _detect(self, image: np.ndarray) -> Faces:  # pragma: no cover - detect() is overridden
        raise NotImplementedError


class HaarDetector(FaceDetector):
    """Viola-Jones Haar cascade (``haarcascade_frontalface_default.xml`` inside OpenCV 4.x).

    The cascade has no calibrated confidence; ``det_score`` is 1 for every face.
    """

    name = "haar"

    def __init__(
        self, scale: float = 1.0, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 20, **kw: Any
    ):
        kw.setdefault("score_threshold", 0.0)
        super().__init__(scale=scale, **kw)
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FileNotFoundError(f"Haar cascade not found at {path} (OpenCV 4.x headless ships it)")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def _detect(self, image: np.ndarray) -> Faces:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        if len(rects) == 0:
            return Faces.empty()
        rects = np.asarray(rects, np.float32)
        return Faces(xyxy=np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1))


#: name -> factory; other modules (e.g. our own trained detector) register themselves here.
DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "yunet": YuNetDetector,
    "ssd": SSDDetector,
    "haar": HaarDetector,
}


def _maskwatch_detector(**kwargs: Any) -> FaceDetector:
    from .detection_model import MaskwatchDetector  # imported on use: needs the trained model file

    return MaskwatchDetector(**kwargs)


DETECTORS["maskwatch"] = _maskwatch_detector


def _rfb_detector(**kwargs: Any) -> FaceDetector:
    from .rfb import RFBMaskDetector  # imported on use: needs the trained model file

    return RFBMaskDetector(**kwargs)


DETECTORS["rfb"] = _rfb_detector

#: The measured best settings of each detector on the fmd validation photos (benchmarks/bench_detect.py,
#: docs/detection.md): scale 1 with small photos upscaled until their longer side is ``min_side``.
#: `maskwatch.load` applies them to the settings its caller leaves unset; `create_detector` does not.
MEASURED_DEFAULTS: dict[str, dict[str, float]] = {
    "yunet": {"scale": 1.0, "min_side": 800, "score_threshold": 0.2},
    "maskwatch": {"scale": 1.0, "min_side": 640, "score_threshold": 0.3},
}
#: ``yunet+maskwatch``: each member's settings over its measured defaults, the weight of its face
#: scores (YuNet's run higher than ours; 0.7 ranks the merged faces best) and its ``solo`` threshold:
#: a face scored at least that is kept on one detector's word; below it, down to the member's
#: ``score_threshold``, only where the other detector finds a face too (IoU >= 0.3, `ENSEMBLE_AGREE_IOU`).
#: YuNet keeps its measured 0.2 alone and sees down to 0.02; maskwatch's detector runs at its own 0.3
#: and needs 0.5 alone, which keeps out what it finds in clothes and badges of portraits (a suit badge
#: scored 0.44-0.46). Against maskwatch's member at a plain 0.5: face recall 0.892 -> 0.919 and face
#: AP 0.865 -> 0.888 on the fmd validation photos, on large mosaics 0.761 -> 0.831, for 0.07 more
#: false faces per close-up photo (benchmarks/bench_refinements.py, docs/detection.md).
ENSEMBLE_MEMBERS: dict[str, dict[str, float]] = {
    "yunet": {"weight": 0.7, "score_threshold": 0.02, "solo": 0.2},
    "maskwatch": {"weight": 1.0, "solo": 0.5},
}
ENSEMBLE_AGREE_IOU = 0.3
#: Two faces of the ensemble overlapping with IoU above 0.2 are one face. fmd's annotated faces almost
#: never overlap that much (3 of 26,524 pairs), while YuNet's loose second boxes on a large face do:
#: at 0.2 instead of 0.5 the ensemble finds about 60% fewer false faces on close-up photos (0.65 vs 1.76
#: per photo) at the same mAP (benchmarks/bench_refinements.py, docs/detection.md).
ENSEMBLE_NMS = 0.2
#: Faces both members find get the score-weighted mean of the boxes overlapping with IoU above 0.5
#: (box voting): mAP@0.5:0.95 0.350 -> 0.391, mAP@0.5 0.672 -> 0.686 (benchmarks/bench_detect.py);
#: the looser boxes NMS suppresses between 0.2 and 0.5 do not vote. Voting from IoU 0.3 or 0.6 moved only
#: the 17-face mask_worn_incorrectly class, up on one machine and down on the other, and from 0.6 it lost
#: 0.014-0.018 mAP@0.5:0.95 (benchmarks/bench_refinements.py, docs/detection.md).
ENSEMBLE_BOX_VOTING = True
ENSEMBLE_VOTE = 0.5


def _yunet_maskwatch(scale: float | None = None, score_threshold: float | None = None, calibrate: bool = True,
                     **kwargs: Any) -> FaceDetector:
    """YuNet (boxes calibrated to the annotation style unless ``calibrate=False``) + maskwatch's
    detector, each with its measured settings; ``scale`` / ``score_threshold`` given here apply to
    both (an explicit scale without the upscaling of small photos; an explicit threshold makes the
    ensemble the plain union of both members' faces at that score)."""
    from .calibration import CalibratedDetector
    from .ensemble import EnsembleDetector

    members, weights, solo = [], [], []
    for name, settings in ENSEMBLE_MEMBERS.items():
        kw = {**MEASURED_DEFAULTS[name], **{k: v for k, v in settings.items() if k not in ("weight", "solo")}, **kwargs}
        if scale is not None:
            kw["scale"] = scale
            if "min_side" not in kwargs:
                kw.pop("min_side")
        if score_threshold is not None:
            kw["score_threshold"] = score_threshold
        det = create_detector(name, **kw)
        members.append(CalibratedDetector(det) if name == "yunet" and calibrate else det)
        weights.append(settings["weight"])
        solo.append(settings.get("solo", kw["score_threshold"]))
    return EnsembleDetector(members, weights, ENSEMBLE_NMS, name="yunet+maskwatch", box_voting=ENSEMBLE_BOX_VOTING,
                            vote_threshold=ENSEMBLE_VOTE, solo_thresholds=None if score_threshold is not None else solo,
                            agree_iou=ENSEMBLE_AGREE_IOU)


DETECTORS["yunet+maskwatch"] = _yunet_maskwatch


def create_detector(name: str = "yunet", **kwargs: Any) -> FaceDetector:
    """Create a face detector by name (see `DETECTORS`)."""
    if name not in DETECTORS:
        raise UnknownNameError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTORS)}")
    return DETECTORS[name](**kwargs)
