"""The mask classifier: an ONNX (or LiteRT) model whose embedded `ModelSpec` drives its preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import ops, registry
from .faces import Faces
from .imageio import as_rgb_array
from .labels import LABELS
from .litertmodel import open_model

#: The shipped model used by default: the int8 one (7-bit weights) is as accurate as fp32 (validation
#: accuracy 0.9817 vs 0.9800; fmd end-to-end mAP@0.5 0.724 vs 0.723) and faster (3.7 vs 4.9 ms per crop
#: on an AVX2-only CPU; benchmarks/bench_classifier.py, docs/detection.md).
DEFAULT_MODEL = "mask-classifier-int8"
#: The default model file of each runtime (`maskwatch.registry` names; the LiteRT ones are written by
#: ``maskwatch export default --format tflite``).
MODEL_FILES = {"onnx": DEFAULT_MODEL, "tflite": "mask-classifier-tflite", "tflite-int8": "mask-classifier-tflite-int8"}


class MaskClassifier:
    """Classifies face crops as ``with_mask`` / ``without_mask`` / ``mask_worn_incorrectly``.

    >>> clf = MaskClassifier()                 # the default (int8) model shipped in the package
    >>> faces = clf.classify(image, faces)     # adds probs to detector output
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None, batch_size: int = 32,
                 crop_margin: float | None = None, runtime: str = "onnx"):
        if runtime not in MODEL_FILES:
            raise ValueError(f"runtime must be one of {list(MODEL_FILES)}, not {runtime!r}")
        #: `OnnxModel` or `LiteRTModel` (a ``.tflite`` file; default of the ``tflite`` runtimes)
        self.model = open_model(Path(model) if model else registry.resolve(MODEL_FILES[runtime]), "classifier", threads)
        self.path, self.spec = self.model.path, self.model.spec
        self.batch_size = batch_size
        #: context added around each face box before cropping (default: the margin it was trained with)
        self.crop_margin = self.spec.crop_margin if crop_margin is None else float(crop_margin)

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 3)`` (canonical label order) for uint8 RGB crops ``(N, S, S, 3)``."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"crops must have shape (N, S, S, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        size = self.spec.input_size
        if crops.shape[1:3] != (size, size):
            crops = np.concatenate([ops.crop_whole(c, size) for c in crops])
        probs = []
        for i in range(0, len(crops), self.batch_size):
            x = ops.normalize(crops[i : i + self.batch_size], self.spec.mean, self.spec.std, self.model.layout)
            logits = self.model.run(None, x)[0]
            probs.append(ops.softmax(logits.astype(np.float32)))
        return self.model.to_canonical(np.concatenate(probs))

    def crops(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """The crops this classifier sees for ``faces`` (the shared `ops.crop_faces`)."""
        return ops.crop_faces(image, faces.xyxy, self.spec.input_size, self.crop_margin)

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        """``faces`` with class probabilities added."""
        image = as_rgb_array(image)
        return faces.with_probs(self.predict_crops(self.crops(image, faces)), LABELS)

    def classify_image(self, image: np.ndarray) -> np.ndarray:
        """Probabilities ``(3,)`` for an image that is already a face crop."""
        return self.predict_crops(ops.crop_whole(as_rgb_array(image), self.spec.input_size))[0]

    def __repr__(self) -> str:
        return f"MaskClassifier({self.path.name}, input={self.spec.input_size}, labels={self.spec.labels})"
