"""The mask classifier: an ONNX model whose embedded `ModelSpec` drives its preprocessing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import ops, registry
from .errors import ModelSpecError
from .faces import Faces
from .imageio import as_rgb_array
from .labels import LABELS
from .spec import ModelSpec

#: The shipped model used by default: the int8 one (7-bit weights) is as accurate as fp32 (validation
#: accuracy 0.9817 vs 0.9800; fmd end-to-end mAP@0.5 0.724 vs 0.723) and faster (3.7 vs 4.9 ms per crop
#: on an AVX2-only CPU; benchmarks/bench_classifier.py, docs/detection.md).
DEFAULT_MODEL = "mask-classifier-int8"


#: ONNX Runtime's thread-pool spinning: "off" (maskwatch's default), "on" (ONNX Runtime's default) or
#: "stop" (spin during a run, stop when it returns); the environment variable MASKWATCH_SPINNING
#: overrides it. A spinning pool keeps a core busy after its run and slows whatever runs next in the
#: pipeline (the other detector, the classifier, OpenCV's YuNet). Measured on 2 cores
#: (benchmarks/bench_threads.py): "off" takes the default pipeline from 82.8 to 49.7 ms per 640x480
#: frame and the YuNet pipeline from 41.9 to 28.1 ms; one model alone is within 3% either way; "stop"
#: is within noise of "off", but "off" also leaves the cores free for a server's other workers.
SPINNING = "off"
_SPIN_CONFIG = {"off": {"session.intra_op.allow_spinning": "0"}, "on": {"session.intra_op.allow_spinning": "1"},
                "stop": {"session.force_spinning_stop": "1"}}


def onnx_session(path: str | Path, threads: int | None = None, spinning: str | None = None):
    """An ONNX Runtime session on the best available provider (CUDA if present, else CPU).

    ``threads``: intra-op threads (default: ``MASKWATCH_THREADS`` or all cores); ``spinning``: see
    `SPINNING` (default: ``MASKWATCH_SPINNING`` or `SPINNING`).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = threads or int(os.environ.get("MASKWATCH_THREADS", 0)) or None
    if threads:
        opts.intra_op_num_threads = threads
    spinning = spinning or os.environ.get("MASKWATCH_SPINNING") or SPINNING
    if spinning not in _SPIN_CONFIG:
        raise ValueError(f"spinning must be one of {sorted(_SPIN_CONFIG)}, not {spinning!r}")
    for key, value in _SPIN_CONFIG[spinning].items():
        opts.add_session_config_entry(key, value)
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


class MaskClassifier:
    """Classifies face crops as ``with_mask`` / ``without_mask`` / ``mask_worn_incorrectly``.

    >>> clf = MaskClassifier()                 # the default (int8) model shipped in the package
    >>> faces = clf.classify(image, faces)     # adds probs to detector output
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None, batch_size: int = 32,
                 crop_margin: float | None = None):
        path = Path(model) if model else registry.resolve(DEFAULT_MODEL)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: classifier model not found")
        self.path = path
        self.session = onnx_session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = ModelSpec.from_metadata(meta, source=str(path))
        if self.spec.kind != "classifier":
            raise ModelSpecError(f"{path}: spec kind is {self.spec.kind!r}, expected 'classifier'")
        unknown = [label for label in self.spec.labels if label not in LABELS]
        if unknown:
            raise ModelSpecError(f"{path}: labels {unknown} are not maskwatch labels {LABELS}")
        self._input = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        #: context added around each face box before cropping (default: the margin it was trained with)
        self.crop_margin = self.spec.crop_margin if crop_margin is None else float(crop_margin)
        # model column -> canonical column (a 2-class model leaves mask_worn_incorrectly at 0)
        self._columns = [LABELS.index(label) for label in self.spec.labels]

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 3)`` (canonical label order) for uint8 RGB crops ``(N, S, S, 3)``."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"crops must have shape (N, S, S, 3), got {crops.shape}")
        out = np.zeros((len(crops), len(LABELS)), np.float32)
        if len(crops) == 0:
            return out
        size = self.spec.input_size
        if crops.shape[1:3] != (size, size):
            crops = np.concatenate([ops.crop_whole(c, size) for c in crops])
        probs = []
        for i in range(0, len(crops), self.batch_size):
            x = ops.normalize(crops[i : i + self.batch_size], self.spec.mean, self.spec.std)
            logits = self.session.run(None, {self._input: x})[0]
            probs.append(ops.softmax(logits.astype(np.float32)))
        out[:, self._columns] = np.concatenate(probs)
        return out

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
