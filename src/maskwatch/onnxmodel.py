"""The one ONNX model loader: an ONNX Runtime session, the `ModelSpec` from the file's metadata, and
the checks every maskwatch model file must pass (its kind, its labels). The classifier and
maskwatch's detector both load through `OnnxModel`; `onnx_session` alone serves files without a
spec (third-party models in the benchmarks, export checks).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import ModelSpecError
from .labels import LABELS
from .spec import ModelSpec

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


_SESSION_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar("maskwatch_session_threads",
                                                                              default=None)


@contextlib.contextmanager
def session_threads(threads: int | None) -> Iterator[None]:
    """Sessions created inside this block (in this thread) use ``threads`` intra-op threads where
    their creator gives none: how a batch engine runs one-thread models side by side
    (`maskwatch.batch`) without a ``threads`` argument in every model's signature."""
    token = _SESSION_THREADS.set(threads)
    try:
        yield
    finally:
        _SESSION_THREADS.reset(token)


def onnx_session(path: str | Path, threads: int | None = None, spinning: str | None = None):
    """An ONNX Runtime session on the best available provider (CUDA if present, else CPU).

    ``threads``: intra-op threads (default: that of an enclosing `session_threads`, else
    ``MASKWATCH_THREADS``, else all cores); ``spinning``: see `SPINNING` (default:
    ``MASKWATCH_SPINNING`` or `SPINNING`).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = threads or _SESSION_THREADS.get() or int(os.environ.get("MASKWATCH_THREADS", 0)) or None
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


class OnnxModel:
    """A maskwatch ONNX file: ``session``, ``spec`` (from its metadata), ``input_name``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelSpecError: not an ONNX model, no spec in the metadata, a spec of another ``kind``, or
            labels that are not maskwatch labels.
    """

    #: the input layout `run` takes
    layout = "NCHW"

    def __init__(self, path: str | Path, kind: str, threads: int | None = None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {kind} model not found")
        self.path = path
        try:
            self.session = onnx_session(path, threads)
        except Exception as e:  # ONNX Runtime's own exception types: a file that is not a model it can run
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelSpecError(f"{path}: not an ONNX model ONNX Runtime can load ({reason})") from e
        self.spec = ModelSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map,
                                            source=str(path)).require(kind, str(path))
        self.input_name = self.session.get_inputs()[0].name
        #: model column -> canonical column (a 2-class model leaves mask_worn_incorrectly at 0)
        self.columns = [LABELS.index(label) for label in self.spec.labels]

    def run(self, outputs: list[str] | None, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(outputs, {self.input_name: x})

    def to_canonical(self, probs: np.ndarray) -> np.ndarray:
        """``(N, model classes)`` probabilities -> ``(N, 3)`` in `LABELS` order."""
        out = np.zeros((len(probs), len(LABELS)), np.float32)
        out[:, self.columns] = probs
        return out
