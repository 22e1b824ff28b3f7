"""Export a trained classifier to ONNX (fp32 / int8) or TFLite, with its spec embedded and checked."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .. import ops
from ..classifier import onnx_session
from ..spec import ModelSpec

log = logging.getLogger(__name__)


def _embed_metadata(path: Path, spec: ModelSpec) -> None:
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
    _embed_metadata(path, spec)
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
    ``spec`` is embedded in the result. Used for the classifier and the detector alike."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    pre = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    pre.unlink(missing_ok=True)
    _embed_metadata(out_path, spec)
    return {"path": str(out_path), "size_bytes": out_path.stat().st_size}


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
        rng = np.random.default_rng(0)
        rows = [split["train"][i] for i in rng.permutation(len(split["train"]))[:calibration]]
        calib, ok = D.nominal_crops(D.samples_from_rows(rows), spec.input_size, spec.crop_margin)
        q_path = out.with_name(out.stem + "_int8.onnx")
        result["int8"] = quantize_int8(out, q_path, calib[ok], spec)
        if split["val"]:
            val = D.samples_from_rows(split["val"])
            result["int8_val_accuracy"] = evaluate_samples(q_path, val, report_dir, "int8", progress=progress)["accuracy"]
    if tflite:
        result["tflite"] = str(export_tflite(out, out.parent / (out.stem + "_tflite")))
    return result
