"""Export a trained classifier to ONNX (fp32 / int8) or TFLite, with its spec embedded and checked."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .. import ops
from ..onnxmodel import onnx_session
from ..spec import ModelSpec

log = logging.getLogger(__name__)


def embed_metadata(path: Path, spec: ModelSpec) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in spec.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "maskwatch"
    onnx.save(model, str(path))


def export_onnx(model: torch.nn.Module, spec: ModelSpec, path: str | Path, sample: np.ndarray | None = None,
                opset: int = 17) -> dict:
    """Write ``model`` as ONNX (dynamic batch, logits output) with ``spec`` as metadata.

    The file is then run in ONNX Runtime on ``sample`` (uint8 crops, or random ones) and compared
    with PyTorch; returns ``{"path", "max_abs_diff", "size_bytes"}``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    s = spec.input_size
    dummy = torch.zeros(1, 3, s, s)
    torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                      dynamo=False)
    embed_metadata(path, spec)
    if sample is None:
        sample = np.random.default_rng(0).integers(0, 256, (8, s, s, 3), dtype=np.uint8)
    diff = verify_onnx(model, path, sample, spec)
    return {"path": str(path), "max_abs_diff": diff, "size_bytes": path.stat().st_size}


def verify_onnx(model: torch.nn.Module, path: Path, crops: np.ndarray, spec: ModelSpec) -> float:
    """Max absolute difference of logits, PyTorch vs ONNX Runtime, on ``crops``."""
    x = ops.normalize(crops, spec.mean, spec.std)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = onnx_session(path)
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float(np.abs(ref - got).max())


def quantize_qdq(fp32_path: str | Path, out_path: str | Path, reader, spec: ModelSpec) -> dict:
    """Static int8 quantisation (QDQ, per-channel int8 weights, uint8 activations) with ONNX
    Runtime, calibrated by ``reader`` (an ``onnxruntime.quantization.CalibrationDataReader``);
    ``spec`` is embedded in the result. Used for the classifier and the detector alike.

    Weights use 7 bits, [-64, 64] (``reduce_range``): on x86 CPUs without VNNI (AVX2 only) ONNX
    Runtime multiplies uint8 activations by int8 weights with VPMADDUBSW, which adds pairs of products
    in int16 and saturates with full-range weights (2 * 255 * 127 > 32767), so one file gave other
    answers there than on a VNNI CPU. With 7-bit weights no sum saturates (2 * 255 * 64 = 32640).
    Measured on an AVX2-only CPU (docs/detection.md): the 8-bit classifier took the default
    pipeline's fmd mAP@0.5 from 0.712 (fp32) to 0.691, the 7-bit one gives 0.716; with the 8-bit
    detector the pipeline's face recall was 0.914, with its dequantized weights or 7 bits 0.919."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    pre = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    pre.unlink(missing_ok=True)
    embed_metadata(out_path, spec)
    return {"path": str(out_path), "size_bytes": out_path.stat().st_size}


def dequantize_qdq(int8_path: str | Path, out_path: str | Path) -> Path:
    """The fp32 model a QDQ int8 model computes: weights dequantized, activation Q/DQ pairs removed.

    The quantiser drops a ReLU / ReLU6 whose clamping the following activation range implies, so each
    removed activation pair becomes a ``Clip`` to that range. Re-quantising the result with other
    settings (`quantize_qdq`) needs no fp32 original, at the cost of rounding the weights twice.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(int8_path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def value(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    replaced: dict[int, onnx.NodeProto | None] = {}
    added: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        zp_name = node.input[2] if len(node.input) > 2 else ""
        q = value(node.input[0])
        if q is not None:  # a weight or bias: becomes an fp32 initializer of the same name
            scale = value(node.input[1]).astype(np.float32)
            zp = value(zp_name).astype(np.float32) if zp_name else np.zeros_like(scale)
            shape = [1] * q.ndim
            if scale.size > 1:
                shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
            w = (q.astype(np.float32) - zp.reshape(shape)) * scale.reshape(shape)
            added.append(numpy_helper.from_array(w.astype(np.float32), node.output[0]))
            replaced[id(node)] = None
            continue
        quant = producer.get(node.input[0])
        if quant is None or quant.op_type != "QuantizeLinear":
            raise ValueError(f"{int8_path}: {node.name} dequantizes {node.input[0]}, which no QuantizeLinear makes")
        scale = float(value(quant.input[1]))
        zp = value(quant.input[2]) if len(quant.input) > 2 else np.zeros((), np.uint8)
        q_range = np.iinfo(zp.dtype)
        lo = numpy_helper.from_array(np.array((q_range.min - int(zp)) * scale, np.float32), node.output[0] + "_min")
        hi = numpy_helper.from_array(np.array((q_range.max - int(zp)) * scale, np.float32), node.output[0] + "_max")
        added += [lo, hi]
        replaced[id(node)] = helper.make_node("Clip", [quant.input[0], lo.name, hi.name], [node.output[0]])
    nodes = [replaced.get(id(n), n) for n in graph.node]
    nodes = [n for n in nodes if n is not None]
    used = {x for n in nodes for x in n.input} | {o.name for o in graph.output}
    nodes = [n for n in nodes if not (n.op_type == "QuantizeLinear" and n.output[0] not in used)]
    used = {x for n in nodes for x in n.input}
    kept = [t for t in graph.initializer if t.name in used] + [t for t in added if t.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return Path(out_path)


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray, spec: ModelSpec) -> dict:
    """Static int8 quantisation of a classifier, calibrated on uint8 face crops."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            batches = [ops.normalize(calibration[i : i + 16], spec.mean, spec.std) for i in range(0, len(calibration), 16)]
            self._it = iter([{"input": b} for b in batches])

        def get_next(self):
            return next(self._it, None)

    return quantize_qdq(fp32_path, out_path, Reader(), spec)


def export_tflite(onnx_path: str | Path, out_dir: str | Path) -> Path:
    """Convert an exported ONNX classifier to TFLite (float32) with onnx2tf (extra ``tflite``).

    The TFLite model takes NHWC input (onnx2tf transposes), normalised like the ONNX model.
    """
    try:
        import onnx2tf
    except ImportError as exc:
        raise ImportError("TFLite export needs the 'tflite' extra: pip install 'maskwatch[tflite]'") from exc
    import shutil
    import tempfile

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:  # onnx2tf rewrites its input file in place
        work = Path(tmp) / Path(onnx_path).name
        shutil.copy(onnx_path, work)
        onnx2tf.convert(input_onnx_file_path=str(work), output_folder_path=str(out_dir), non_verbose=True)
    found = sorted(out_dir.glob("*float32.tflite"))
    if not found:
        raise RuntimeError(f"onnx2tf wrote no *_float32.tflite into {out_dir}")
    return found[0]


def calibration_crops(train: list, spec: ModelSpec, n: int = 256) -> np.ndarray:
    """``n`` training samples (a seeded random choice), cut as inference cuts them: int8 calibration."""
    from . import data as D

    rows = [train[i] for i in np.random.default_rng(0).permutation(len(train))[:n]]
    crops, ok = D.nominal_crops(rows, spec.input_size, spec.crop_margin)
    return crops[ok]


def export_checkpoint(checkpoint: str | Path, out: str | Path, int8: bool = False, tflite: bool = False,
                      calibration: int = 256, progress: bool = False) -> dict:
    """Export a run's checkpoint; with the run's split.json, verify on validation crops, calibrate
    int8 on training crops and report validation accuracy before/after quantisation."""
    import json

    from . import data as D
    from .engine import load_checkpoint
    from .evaluate import evaluate_samples

    checkpoint, out = Path(checkpoint), Path(out)
    model, spec, _ = load_checkpoint(checkpoint)
    split_path = checkpoint.parent / "split.json"
    split = json.loads(split_path.read_text()) if split_path.exists() else None
    sample = None
    if split and split["val"]:
        val = D.samples_from_rows(split["val"][:64])
        sample, ok = D.nominal_crops(val, spec.input_size, spec.crop_margin)
        sample = sample[ok]
    result = {"onnx": export_onnx(model, spec, out, sample)}
    report_dir = out.parent / (out.stem + "_report")
    if split and split["val"]:
        val = D.samples_from_rows(split["val"])
        result["fp32_val_accuracy"] = evaluate_samples(out, val, report_dir, "fp32", progress=progress)["accuracy"]
    if int8:
        if not split:
            raise ValueError(f"--int8 needs calibration crops: no split.json beside {checkpoint}")
        q_path = out.with_name(out.stem + "_int8.onnx")
        result["int8"] = quantize_int8(out, q_path, calibration_crops(D.samples_from_rows(split["train"]), spec,
                                                                      calibration), spec)
        if split["val"]:
            val = D.samples_from_rows(split["val"])
            result["int8_val_accuracy"] = evaluate_samples(q_path, val, report_dir, "int8", progress=progress)["accuracy"]
    if tflite:
        result["tflite"] = str(export_tflite(out, out.parent / (out.stem + "_tflite")))
    return result
