"""Detector + classifier = `Pipeline`; `load()` builds one with sensible defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import MaskClassifier
from .detectors import MEASURED_DEFAULTS, FaceDetector, create_detector
from .faces import Faces
from .imageio import DEFAULT_MAX_PIXELS, as_rgb_array, read_image

#: Default detector, chosen by measurement (benchmarks/bench_detect.py; docs/detection.md): YuNet and
#: maskwatch's own detector together find the most faces and give the best mAP on fmd's validation
#: photos; each member runs with its measured settings (`maskwatch.detectors.MEASURED_DEFAULTS`).
DEFAULT_DETECTOR = "yunet+maskwatch"
DEFAULT_MIN_FACE = 0


class Pipeline:
    """Finds faces and classifies their masks: ``pipe.detect(image) -> Faces``."""

    def __init__(self, detector: FaceDetector, classifier: MaskClassifier | None, min_face: float = DEFAULT_MIN_FACE,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.detector = detector
        self.classifier = classifier
        self.min_face = float(min_face)
        self.max_pixels = max_pixels

    def detect(self, image: np.ndarray | str | os.PathLike, source: str | None = None) -> Faces:
        """Detect and classify every face.

        Args:
            image: an RGB uint8 ``(H, W, 3)`` array, or a path to an image file.
            source: name recorded in the result (defaults to the path).
        Raises:
            ImageReadError: the path is not a readable image.
        """
        if isinstance(image, (str, os.PathLike)):
            source = source or str(image)
            image = read_image(image, max_pixels=self.max_pixels)
        image = as_rgb_array(image)
        faces = self.detector.detect(image)
        if self.min_face > 0 and len(faces):
            faces = faces[np.minimum(faces.width, faces.height) >= self.min_face]
        if self.classifier is not None:
            faces = self.classifier.classify(image, faces)
        h, w = image.shape[:2]
        return faces.with_meta(image_size=(w, h), source=source)

    __call__ = detect

    def __repr__(self) -> str:
        return f"Pipeline({self.detector!r}, {self.classifier!r}, min_face={self.min_face})"


def load(
    detector: str | FaceDetector = DEFAULT_DETECTOR,
    classifier: str | Path | MaskClassifier | None = "default",
    scale: float | None = None,
    score_threshold: float | None = None,
    min_face: float = DEFAULT_MIN_FACE,
    calibrate: bool | None = None,
    tile: int | None = None,
    min_side: int | None = None,
    **detector_kwargs: Any,
) -> Pipeline:
    """Build a `Pipeline`.

    Args:
        detector: a detector name (``yunet+maskwatch``, ``yunet``, ``maskwatch``, ``ssd``, ``haar``) or a
            `FaceDetector`; names get their measured settings for whatever is left unset.
        classifier: ``"default"`` (the model shipped in the package), a path to an exported ONNX
            classifier, a `MaskClassifier`, or ``None`` to only find faces.
        scale: detector input scale. Default: the measured one (scale 1 with small photos upscaled to
            a longer side of 800 px for yunet, 640 px for maskwatch; see docs/detection.md).
        score_threshold: minimum detector score.
        min_face: drop faces whose shorter side is below this many pixels.
        calibrate: move/scale the detector's boxes onto the annotation style the classifier was
            trained on (`maskwatch.calibration`); default: on for detectors with a measured
            calibration (yunet, ssd).
        tile: detect on overlapping tiles of this many pixels in images larger than that
            (`maskwatch.tiling`): finds small faces in very large photos a capped detector shrinks.
        min_side: upscale smaller images until their longer side is this many pixels (default: the
            measured one; kept with an explicit ``scale``).
        detector_kwargs: passed to the detector.
    """
    from .calibration import BOX_CALIBRATION, CalibratedDetector

    if isinstance(detector, str):
        kw = {**MEASURED_DEFAULTS.get(detector, {}), **detector_kwargs}
        if scale is not None:  # an explicit scale replaces the measured upscaling of small photos
            kw["scale"] = scale
            kw.pop("min_side", None)
        if min_side is not None:
            kw["min_side"] = min_side
        if score_threshold is not None:
            kw["score_threshold"] = score_threshold
        if detector == "yunet+maskwatch" and calibrate is not None:
            kw["calibrate"] = calibrate  # the ensemble calibrates its YuNet member itself
        detector = create_detector(detector, **kw)
    if calibrate is None:
        calibrate = detector.name in BOX_CALIBRATION
    if calibrate and not isinstance(detector, CalibratedDetector):
        detector = CalibratedDetector(detector)
    if tile:
        from .tiling import TiledDetector

        detector = TiledDetector(detector, tile=tile)
    if classifier == "default":
        classifier = MaskClassifier()
    elif classifier is not None and not isinstance(classifier, MaskClassifier):
        classifier = MaskClassifier(classifier)
    return Pipeline(detector, classifier, min_face=min_face)
