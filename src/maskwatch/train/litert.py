"""LiteRT (TFLite) conversions of the shipped ONNX models: the default detector (``rfb``) and the
crop classifier, float32 and int8, each with its `ModelSpec` in the file's metadata and beside it as
JSON (``maskwatch export default --format tflite``; the ``tflite`` extra).

The converter was chosen by measurement (docs/mobile.md): onnx2tf turns the ONNX graph into a
TensorFlow SavedModel with NHWC layout, and TensorFlow's ``TFLiteConverter`` writes the float32 file
and the int8 one. The int8 file is full-integer: every operator runs on int8 tensors (the converter is
held to ``TFLITE_BUILTINS_INT8`` and fails rather than leave a float operator), with per-channel int8
weights and int8 activations calibrated on what the shipped models see on the calibration photos: the
detector's inputs as the pipeline resizes them, and the classifier's crops of the faces the shipped
detector finds there. Input and output stay float32 (a quantize op in front, a dequantize op behind),
so both files take the same tensors and decode alike.

Before conversion the detector's graph is simplified with onnx-graphsurgeon: with the batch of 1 the
ONNX file declares, its shape arithmetic (``Shape -> Gather -> Concat -> Reshape`` of the head) folds
to constants, which keeps the height and width dynamic in the LiteRT file. Each file is checked
against ONNX Runtime on sample inputs; the output tensors are named by matching them with the ONNX
outputs, so a converter that reorders outputs cannot swap them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .. import ops
from ..litertmodel import LiteRTModel, rewrite
from ..onnxmodel import OnnxModel
from ..spec import METADATA_KEY, ModelSpec

PRECISIONS = ("float32", "int8")


def _require_converter():
    try:
        import onnx2tf  # noqa: F401
        import onnx_graphsurgeon  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"TFLite conversion needs the 'tflite' extra: pip install 'maskwatch[tflite]' ({exc})") from exc


def fold_shapes(src: str | Path, dst: str | Path) -> Path:
    """``src`` with its constant shape arithmetic folded (onnx-graphsurgeon), saved as ``dst``."""
    import onnx
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(onnx.load(str(src))))
    graph.fold_constants().cleanup().toposort()
    onnx.save(gs.export_onnx(graph), str(dst))
    return Path(dst)


def saved_model(onnx_path: str | Path, out_dir: str | Path) -> tuple[Path, bytes]:
    """onnx2tf: the ONNX file (shapes inferred and folded, `fold_shapes`) as a TensorFlow SavedModel in
    ``out_dir`` (NHWC input), and onnx2tf's float32 LiteRT file of it. Without the inferred shapes,
    onnx2tf's transposes of the detector's head fit one input size only (the file fails to resize)."""
    import onnx2tf

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:  # onnx2tf may rewrite its input file
        work = fold_shapes(onnx_path, Path(tmp) / "model.onnx")
        onnx2tf.convert(input_onnx_file_path=str(work), output_folder_path=str(out_dir), non_verbose=True,
                        output_signaturedefs=True)
    float32 = (out_dir / "model_float32.tflite").read_bytes()
    for extra in out_dir.glob("*.tflite"):
        extra.unlink()
    return out_dir, float32


def int8_bytes(saved: Path, calibration: Callable[[], Iterable[np.ndarray]]) -> bytes:
    """The SavedModel as a full-integer int8 LiteRT flatbuffer calibrated on the NHWC float32 inputs
    ``calibration()`` yields (float32 input and output; no float operator allowed)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in calibration())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    return converter.convert()


def _raw_outputs(path: Path, x_nhwc: np.ndarray) -> list[np.ndarray]:
    from ..litertmodel import litert_interpreter

    it = litert_interpreter(path, 1)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], x_nhwc.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], x_nhwc)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def name_outputs(path: Path, onnx_model: OnnxModel, x: np.ndarray, spec: ModelSpec) -> list[str]:
    """Name the file's input as the ONNX input and each output as the ONNX output it matches on ``x``
    (NCHW), and write ``spec`` into its metadata. Returns the output names in the file's order."""
    names = [o.name for o in onnx_model.session.get_outputs()]
    ref = dict(zip(names, onnx_model.run(None, x)))
    got = _raw_outputs(path, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    order = []
    for out in got:
        same = [n for n in names if ref[n].shape == out.shape and n not in order]
        if not same:
            raise RuntimeError(f"{path}: output of shape {out.shape} matches no ONNX output {names}")
        order.append(min(same, key=lambda n: float(np.abs(ref[n] - out).max())))
    rewrite(path, metadata=spec.to_metadata(), input_names=[onnx_model.input_name], output_names=order,
            description=f"maskwatch {spec.kind} ({spec.arch}); spec in metadata '{METADATA_KEY}'")
    return order


def compare(onnx_model: OnnxModel, lite: LiteRTModel, inputs: Iterable[np.ndarray]) -> dict[str, float]:
    """Per-tensor max absolute difference, LiteRT vs ONNX Runtime, over ``inputs`` (NCHW: the ONNX
    layout; the LiteRT file gets them transposed)."""
    names = lite.output_names
    worst = {n: 0.0 for n in names}
    for x in inputs:
        ref = dict(zip([o.name for o in onnx_model.session.get_outputs()], onnx_model.run(None, x)))
        for name, out in zip(names, lite.run(names, x.transpose(0, 2, 3, 1))):
            worst[name] = max(worst[name], float(np.abs(ref[name] - out).max()))
    return worst


def int8_ops(path: Path) -> dict[str, int]:
    """How many operators of the file compute in float32 and how many in integers (a full-integer
    file has float32 tensors only at its input quantize and output dequantize operators)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    counts: dict[str, int] = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        dtypes = {graph.tensors[i].type for i in list(op.inputs) if i >= 0}
        key = "float32" if schema.TensorType.FLOAT32 in dtypes and kind not in ("QUANTIZE", "DEQUANTIZE") else "integer"
        counts[key] = counts.get(key, 0) + 1
    return counts


def convert(onnx_path: str | Path, out_dir: str | Path, stem: str, kind: str,
            calibration: list[np.ndarray], check: list[np.ndarray]) -> dict[str, Any]:
    """``out_dir/{stem}_float32.tflite`` and ``{stem}_int8.tflite`` (int8 calibrated on ``calibration``,
    NCHW inputs as the ONNX model takes them), each with its spec in the metadata and beside it as
    ``{stem}.json``; each checked against ONNX Runtime on ``check``. Returns sizes and differences."""
    _require_converter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_model = OnnxModel(onnx_path, kind, threads=1)
    spec = onnx_model.spec
    report: dict[str, Any] = {"source": Path(onnx_path).name, "calibration_inputs": len(calibration)}
    with tempfile.TemporaryDirectory() as tmp:
        saved, float32 = saved_model(onnx_path, Path(tmp) / "saved_model")
        for precision in PRECISIONS:
            path = out_dir / f"{stem}_{precision}.tflite"
            if precision == "float32":
                path.write_bytes(float32)
            else:
                path.write_bytes(int8_bytes(saved, lambda: (np.ascontiguousarray(x.transpose(0, 2, 3, 1))
                                                            for x in calibration)))
            outputs = name_outputs(path, onnx_model, check[0], spec)
            lite = LiteRTModel(path, kind, threads=1)
            report[precision] = {"file": path.name, "size_bytes": path.stat().st_size, "outputs": outputs,
                                 "operators": int8_ops(path), "max_abs_diff": compare(onnx_model, lite, check)}
    (out_dir / f"{stem}.json").write_text(json.dumps(json.loads(spec.to_json()), indent=2) + "\n")
    return report


def detector_inputs(photos: list[np.ndarray], runtime_detector) -> tuple[list[np.ndarray], list]:
    """The inputs ``runtime_detector`` (an `RFBMaskDetector`) feeds its network for each photo (its own
    resizing), and the faces it finds there."""
    seen: list[np.ndarray] = []
    forward = runtime_detector.forward

    def record(x):
        seen.append(x)
        return forward(x)

    runtime_detector.forward = record
    try:
        faces = [runtime_detector(image) for image in photos]
    finally:
        del runtime_detector.forward
    return seen, faces


def export_default(out_dir: str | Path, photos: list[np.ndarray], max_crops: int = 256,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The shipped default detector and classifier as LiteRT files in ``out_dir`` (float32 and int8),
    int8 calibrated on ``photos`` (RGB uint8): the detector on its inputs for them, the classifier on
    up to ``max_crops`` crops of the faces the shipped detector finds in them."""
    from .. import registry
    from ..classifier import MaskClassifier
    from ..classifier import MODEL_FILES as CLASSIFIER_FILES
    from ..detectors import build
    from ..detectors.rfb import MODEL_FILES as DETECTOR_FILES

    if not photos:
        raise ValueError("int8 calibration needs at least one photo")
    say = progress or (lambda message: None)
    detector = build("rfb", threads=1)
    say(f"running the shipped detector on {len(photos)} calibration photos")
    det_inputs, found = detector_inputs(photos, detector)
    clf = MaskClassifier(registry.resolve("mask-classifier"), threads=1)
    crops = [c for image, faces in zip(photos, found) if len(faces) for c in clf.crops(image, faces)]
    if not crops:
        raise ValueError("the shipped detector found no face in the calibration photos")
    crops = np.stack(crops)[np.random.default_rng(0).permutation(len(crops))[:max_crops]]
    crop_inputs = [ops.normalize(crops[i : i + 1], clf.spec.mean, clf.spec.std) for i in range(len(crops))]
    check_crops = ops.normalize(crops[:16], clf.spec.mean, clf.spec.std)
    out = {}
    say("converting the detector (onnx2tf + TFLiteConverter)")
    out["detector"] = convert(registry.resolve(DETECTOR_FILES["onnx"]), out_dir, "maskwatch_rfb", "detector",
                              det_inputs, det_inputs[:4])
    say("converting the classifier (onnx2tf + TFLiteConverter)")
    out["classifier"] = convert(registry.resolve("mask-classifier"), out_dir, "mask_classifier", "classifier",
                                crop_inputs, [check_crops])
    out["files"] = {runtime: [registry.model_info(n).filename for n in (DETECTOR_FILES[runtime], CLASSIFIER_FILES[runtime])]
                    for runtime in ("tflite", "tflite-int8")}
    return out
