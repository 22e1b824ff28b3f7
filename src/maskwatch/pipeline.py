"""Detector + classifier = `Pipeline`, the one way through the models; `load()` builds one.

Its stages are what photos, video, evaluation and the web need: `Pipeline.find_faces` (detector +
``min_face`` filter), `Pipeline.classify` (the classifier on given faces), `Pipeline.detect` (both,
from an image or a path). Nothing outside reaches into it: `describe` says what it runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import MaskClassifier
from .detectors import Detector, Tiled, build, describe, entry, names, resolve
from .faces import Faces
from .imageio import DEFAULT_MAX_PIXELS, as_rgb_array, read_image
from .presets import preset as get_preset

DEFAULT_MIN_FACE = 0
#: `load`'s runtimes: ONNX Runtime, or the LiteRT interpreter on the float32 / int8 LiteRT files
RUNTIMES = ("onnx", "tflite", "tflite-int8")


class Pipeline:
    """Finds faces and classifies their masks: ``pipe.detect(image) -> Faces``.

    Args:
        detector: any ``image -> Faces`` callable (`maskwatch.detectors`).
        classifier: a `MaskClassifier`, or ``None`` to keep the detector's own classes (or none).
        min_face: drop faces whose shorter side is below this many pixels.
        max_pixels: larger images are downscaled while decoding (or refused).
        classifier_weight: behind a detector that labels the masks itself, the class probabilities are
            ``w * classifier + (1 - w) * detector``; 1 (default) keeps the classifier's alone.
        classifier_below: behind such a detector, only the faces whose detector label is less sure than
            this (highest class probability) go to the classifier, a second opinion where it is needed;
            the others keep the detector's probabilities. 1 (default): every face.
    """

    def __init__(self, detector: Detector, classifier: MaskClassifier | None, min_face: float = DEFAULT_MIN_FACE,
                 max_pixels: int = DEFAULT_MAX_PIXELS, classifier_weight: float = 1.0, classifier_below: float = 1.0):
        if not 0.0 <= classifier_weight <= 1.0:
            raise ValueError(f"classifier_weight must be in [0, 1], got {classifier_weight}")
        if not 0.0 < classifier_below <= 1.0:
            raise ValueError(f"classifier_below must be in (0, 1], got {classifier_below}")
        self._detector = detector
        self._classifier = classifier
        self.min_face = float(min_face)
        self.max_pixels = int(max_pixels)
        self.classifier_weight = float(classifier_weight)
        self.classifier_below = float(classifier_below)

    @property
    def classifies(self) -> bool:
        """Whether `classify` adds class probabilities (a classifier is loaded)."""
        return self._classifier is not None

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """An image file as RGB uint8, within this pipeline's ``max_pixels``."""
        return read_image(path, max_pixels=self.max_pixels)

    def find_faces(self, image: np.ndarray) -> Faces:
        """Stage 1: the detector on an RGB uint8 image, faces below ``min_face`` dropped."""
        faces = self._detector(as_rgb_array(image))
        if self.min_face > 0 and len(faces):
            faces = faces[np.minimum(faces.width, faces.height) >= self.min_face]
        return faces

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        """Stage 2: ``faces`` of ``image`` with the classifier's probabilities (unchanged without one),
        averaged with the detector's own by ``classifier_weight``, for the faces ``classifier_below`` picks."""
        if self._classifier is None:
            return faces
        own = faces.probs is not None and len(faces) and tuple(faces.labels) == tuple(self._classifier.labels)
        if not own:
            return self._classifier.classify(image, faces)
        ask = np.nonzero(faces.probs.max(1) < self.classifier_below)[0] if self.classifier_below < 1.0 else np.arange(len(faces))
        if not len(ask):
            return faces
        second = self._classifier.classify(image, faces[ask]).probs
        probs = faces.probs.copy()
        w = self.classifier_weight
        probs[ask] = w * second + (1.0 - w) * faces.probs[ask]
        return faces.with_probs(probs, faces.labels)

    def classify_crop(self, image: np.ndarray) -> np.ndarray:
        """Probabilities ``(3,)`` for an image that is already a face crop."""
        if self._classifier is None:
            raise RuntimeError("this pipeline has no classifier")
        return self._classifier.classify_image(image)

    def detect(self, image: np.ndarray | str | os.PathLike, source: str | None = None) -> Faces:
        """Detect and classify every face.

        Args:
            image: an RGB uint8 ``(H, W, 3)`` array, or a path to an image file.
            source: name recorded in the result (defaults to the path).
        Raises:
            ImageReadError: the path is not a readable image.
        """
        return self.detect_timed(image, source)[0]

    __call__ = detect

    def detect_timed(self, image: np.ndarray | str | os.PathLike, source: str | None = None
                     ) -> tuple[Faces, dict[str, float | None]]:
        """`detect`, and the seconds each stage took (``classifier``: ``None`` without one)."""
        if isinstance(image, (str, os.PathLike)):
            source = source or str(image)
            image = self.read(image)
        image = as_rgb_array(image)
        t0 = time.perf_counter()
        faces = self.find_faces(image)
        t1 = time.perf_counter()
        faces = self.classify(image, faces)
        t2 = time.perf_counter()
        h, w = image.shape[:2]
        times = {"detector": t1 - t0, "classifier": t2 - t1 if self._classifier is not None else None}
        return faces.with_meta(image_size=(w, h), source=source), times

    def describe(self) -> dict[str, Any]:
        """What this pipeline runs: the detector's settings, ``min_face``, the classifier's file and spec."""
        out: dict[str, Any] = {"detector": describe(self._detector), "min_face": self.min_face, "classifier": None}
        if self._classifier is not None:
            clf = self._classifier
            out["classifier"] = {"file": clf.path.name, "path": str(clf.path), "labels": list(clf.labels),
                                 "model_labels": list(clf.spec.labels), "input_size": clf.spec.input_size,
                                 "weight": self.classifier_weight, "below": self.classifier_below}
        return out

    def __repr__(self) -> str:
        return (f"Pipeline({self._detector!r}, {self._classifier!r}, min_face={self.min_face}, "
                f"classifier_weight={self.classifier_weight}, classifier_below={self.classifier_below})")


def resolve_classifier(detector: str | None, classifier: Any, preset: str = "photo") -> tuple[Any, dict[str, float]]:
    """``(classifier, how)``, ``how`` being the `Pipeline` keywords ``classifier_weight`` /
    ``classifier_below``. ``"auto"``: the ``preset``'s classifier and keywords where its own detector
    runs (``detector`` ``None`` or the preset's), else ``None`` behind a detector that labels the masks
    itself (its registry entry's ``labels_masks``) and ``"default"`` (the shipped classifier) behind a
    face-only one; anything else as given, every face to the classifier, its labels alone."""
    if isinstance(classifier, str) and classifier == "auto":
        if detector is not None:
            detector = resolve(detector)[0]
        chosen = get_preset(preset)
        if detector is None or detector == chosen.detector:
            if "classifier" in chosen.settings:
                how = {k: float(chosen.settings[k]) for k in ("classifier_weight", "classifier_below") if k in chosen.settings}
                return chosen.settings["classifier"], how
            detector = chosen.detector
        return (None if entry(detector).labels_masks else "default"), {}
    return classifier, {}


def load(
    detector: str | Detector | None = None,
    classifier: str | Path | MaskClassifier | None = "auto",
    scale: float | None = None,
    score_threshold: float | None = None,
    min_face: float = DEFAULT_MIN_FACE,
    calibrate: bool | None = None,
    tile: int | None = None,
    min_side: int | None = None,
    preset: str = "photo",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    runtime: str = "onnx",
    classifier_weight: float | None = None,
    classifier_below: float | None = None,
    **detector_kwargs: Any,
) -> Pipeline:
    """Build a `Pipeline`.

    Args:
        detector: a registered detector name (``rfb``, ``yunet``, ``yunet+maskwatch``, ``maskwatch``,
            ``ssd``, ``haar``), an exported detector file (``maskwatch train-detector``'s: it runs as
            the entry of its spec's arch, `maskwatch.detectors.resolve`) or any ``image -> Faces``
            callable; names and files get their measured settings for whatever is left unset.
            Default: the ``preset``'s detector.
        classifier: ``"auto"`` (none behind a one-pass detector that labels the masks itself, like
            ``rfb``; the shipped classifier behind a face-only detector), ``"default"`` (the model
            shipped in the package), a path to an exported ONNX classifier, a `MaskClassifier`, or
            ``None`` to keep the detector's own classes (or only find faces).
        scale: detector input scale. Default: the measured one (scale 1 with small photos upscaled to
            a longer side of 640 px, by at most 2x, for rfb; 800 px for yunet; see docs/detection.md).
        score_threshold: minimum detector score.
        min_face: drop faces whose shorter side is below this many pixels.
        calibrate: move/scale the detector's boxes onto the annotation style the classifier was
            trained on (`maskwatch.detectors.calibration`); default: on for detectors with a measured
            calibration (yunet, ssd; the ensemble's YuNet member).
        tile: detect on overlapping tiles of this many pixels in images larger than that
            (`maskwatch.detectors.tiling`): finds small faces in very large photos a capped detector shrinks.
        min_side: upscale smaller images until their longer side is this many pixels (default: the
            measured one; kept with an explicit ``scale``); ``max_upscale=`` (a detector keyword) caps
            the factor.
        preset: ``photo``, ``video`` or ``api`` (`maskwatch.presets`): the default detector, and its
            settings where the caller leaves them unset.
        max_pixels: larger images are downscaled while decoding (or refused).
        runtime: ``"onnx"`` (ONNX Runtime), ``"tflite"`` or ``"tflite-int8"``: the LiteRT interpreter on
            the float32 / int8 LiteRT conversions of the detector (``rfb``) and of the default
            classifier, which ``maskwatch export default --format tflite`` writes into the model cache
            (or ``MASKWATCH_MODELS``); nothing converts or downloads at load time (docs/mobile.md).
        classifier_weight, classifier_below: with a classifier behind a detector that labels the masks
            too, the classifier's share of the class probabilities and which faces it sees (`Pipeline`);
            default: `resolve_classifier`'s (the preset's with its own classifier, else 1 and every face).
        detector_kwargs: passed to the detector.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {list(RUNTIMES)}, not {runtime!r}")
    chosen = get_preset(preset)
    if detector is None:
        detector = chosen.detector
    if isinstance(detector, str):  # a name, or an exported model file: its entry, with model_path
        detector, from_file = resolve(detector)
        detector_kwargs = {**from_file, **detector_kwargs}
    name = detector if isinstance(detector, str) else None
    if isinstance(detector, str):
        settings = dict(chosen.settings) if detector == chosen.detector else {}
        scale = settings.get("scale") if scale is None else scale
        score_threshold = settings.get("score_threshold") if score_threshold is None else score_threshold
        if runtime != "onnx":
            if runtime not in entry(detector).runtimes:
                able = [n for n in names() if runtime in entry(n).runtimes]
                raise ValueError(f"detector {detector!r} has no {runtime!r} runtime; detectors that have: {', '.join(able)}")
            detector_kwargs["runtime"] = runtime
        detector = build(detector, scale=scale, min_side=min_side, score_threshold=score_threshold,
                         calibrate=calibrate, **detector_kwargs)
    if tile:
        detector = Tiled(detector, tile=tile)
    classifier, how = resolve_classifier(name, classifier, preset)
    if classifier_weight is not None:
        how["classifier_weight"] = classifier_weight
    if classifier_below is not None:
        how["classifier_below"] = classifier_below
    if classifier == "default":
        classifier = MaskClassifier(runtime=runtime)
    elif classifier is not None and not isinstance(classifier, MaskClassifier):
        classifier = MaskClassifier(classifier)
    return Pipeline(detector, classifier, min_face=min_face, max_pixels=max_pixels, **how)

