"""The LiteRT (TFLite) sibling of `onnxmodel`: a maskwatch model converted to a ``.tflite`` file
(``maskwatch export default --format tflite``), run by the LiteRT interpreter (``ai-edge-litert``,
the ``litert`` extra; no TensorFlow at run time).

`LiteRTModel` has the interface of `OnnxModel` (``spec``, ``layout``, ``columns``, ``run``,
``to_canonical``), so the detector and classifier prepare its input (`maskwatch.ops.normalize` in its
``layout``, NHWC) and decode its outputs (by their ONNX names) with the same code. The file carries its `ModelSpec` in the TFLite model's metadata
(entry ``maskwatch_spec``, JSON), read here with the flatbuffers schema that ships with LiteRT.
`open_model` picks the loader from the file's suffix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ModelSpecError
from .labels import LABELS
from .spec import METADATA_KEY, ModelSpec

SUFFIX = ".tflite"
_FILE_IDENTIFIER = b"TFL3"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise ImportError("LiteRT models need the 'litert' extra: pip install 'maskwatch[litert]'") from exc
    return schema


def read_metadata(path: str | Path) -> dict[str, str]:
    """The text entries of a ``.tflite`` file's metadata (``name -> UTF-8 text``)."""
    schema = _schema()
    buf = Path(path).read_bytes()
    if not schema.Model.ModelBufferHasIdentifier(buf, 0):
        raise ModelSpecError(f"{path}: not a TFLite model file")
    model = schema.Model.GetRootAs(buf, 0)
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        data = model.Buffers(entry.Buffer()).DataAsNumpy()
        if isinstance(data, np.ndarray):
            try:
                out[entry.Name().decode()] = data.tobytes().decode("utf-8")
            except UnicodeDecodeError:  # the converter's own binary entries (runtime version, ...)
                continue
    return out


def rewrite(path: str | Path, metadata: dict[str, str] | None = None, input_names: list[str] | None = None,
            output_names: list[str] | None = None, description: str | None = None) -> None:
    """Edit a ``.tflite`` file in place: add (or replace) text metadata entries, and name the main
    subgraph's inputs / outputs (in their order) and its signature's keys alike."""
    import flatbuffers

    schema = _schema()
    path = Path(path)
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    for indices, names in ((graph.inputs, input_names), (graph.outputs, output_names)):
        if names is None:
            continue
        if len(names) != len(indices):
            raise ValueError(f"{path}: {len(indices)} tensors, {len(names)} names")
        for index, name in zip(indices, names):
            graph.tensors[index].name = name.encode()
    for sig in model.signatureDefs or []:
        for maps in (sig.inputs, sig.outputs):
            for m in maps or []:
                m.name = graph.tensors[m.tensorIndex].name
    if metadata:
        model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in metadata]
        for name, text in metadata.items():
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(text.encode("utf-8"), np.uint8)
            model.buffers.append(buffer)
            entry = schema.MetadataT()
            entry.name, entry.buffer = name.encode(), len(model.buffers) - 1
            model.metadata.append(entry)
    if description is not None:
        model.description = description.encode()
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    tmp = path.with_suffix(".tflite.part")
    tmp.write_bytes(builder.Output())
    os.replace(tmp, path)


def litert_interpreter(path: str | Path, threads: int | None = None):
    """A LiteRT interpreter (XNNPACK on CPU) with ``threads`` threads (default: ``MASKWATCH_THREADS``
    or all cores)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ImportError("LiteRT models need the 'litert' extra: pip install 'maskwatch[litert]'") from exc
    threads = threads or int(os.environ.get("MASKWATCH_THREADS", 0)) or os.cpu_count() or 1
    return Interpreter(model_path=str(path), num_threads=int(threads))


class LiteRTModel:
    """A maskwatch ``.tflite`` file: ``interpreter``, ``spec`` (from its metadata), ``input_name``.

    ``run`` takes the ONNX model's input in NHWC layout (``layout``) and returns the outputs by name;
    an input of another size than the last one resizes the interpreter's input (the detector's file
    has a dynamic height and width, the classifier's a dynamic batch).

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelSpecError: not a TFLite file, no spec in its metadata, a spec of another ``kind``, or
            labels that are not maskwatch labels.
    """

    #: the input layout `run` takes
    layout = "NHWC"

    def __init__(self, path: str | Path, kind: str, threads: int | None = None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {kind} model not found")
        self.path = path
        self.spec = ModelSpec.from_metadata(read_metadata(path), source=str(path)).require(kind, str(path))
        self.interpreter = litert_interpreter(path, threads)
        self._input = self.interpreter.get_input_details()[0]
        self.input_name = self._input["name"]
        self._outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        self._shape: tuple[int, ...] | None = None
        self.columns = [LABELS.index(label) for label in self.spec.labels]

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    def run(self, outputs: list[str] | None, x: np.ndarray) -> list[np.ndarray]:
        """Outputs ``outputs`` (all, in the file's order, for ``None``) for an NHWC float32 input."""
        it = self.interpreter
        x = np.ascontiguousarray(x, np.float32)
        if x.shape != self._shape:
            it.resize_tensor_input(self._input["index"], x.shape)
            it.allocate_tensors()
            self._shape = x.shape
        it.set_tensor(self._input["index"], x)
        it.invoke()
        names = list(self._outputs) if outputs is None else outputs
        return [it.get_tensor(self._outputs[name]["index"]) for name in names]

    def to_canonical(self, probs: np.ndarray) -> np.ndarray:
        """``(N, model classes)`` probabilities -> ``(N, 3)`` in `LABELS` order."""
        out = np.zeros((len(probs), len(LABELS)), np.float32)
        out[:, self.columns] = probs
        return out


def open_model(path: str | Path, kind: str, threads: int | None = None):
    """`LiteRTModel` for a ``.tflite`` file, else `OnnxModel`: the same interface either way."""
    if Path(path).suffix == SUFFIX:
        return LiteRTModel(path, kind, threads)
    from .onnxmodel import OnnxModel

    return OnnxModel(path, kind, threads)
