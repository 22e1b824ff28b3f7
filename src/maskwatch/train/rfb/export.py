"""Export the RFB detector: ONNX with its spec (checked against PyTorch), then int8 (7-bit weights)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import ops
from ...datasets import VocImage
from ...detectors import rfb
from ...imageio import read_image
from ...spec import ModelSpec
from .loop import load_checkpoint
from .model import RFBInference

OUTPUTS = ("scores", "locs")


def export_onnx(checkpoint: str | Path, path: str | Path, opset: int = 17) -> dict[str, Any]:
    """``checkpoint`` -> ONNX (dynamic height and width) with its spec; raises if ONNX Runtime's
    outputs differ from PyTorch's by more than 1e-4 on a random input of another size."""
    from ...onnxmodel import onnx_session
    from ..export import embed_metadata

    model, spec, ck = load_checkpoint(checkpoint)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = RFBInference(model).eval()
    dyn = {"input": {2: "height", 3: "width"}, "scores": {1: "priors"}, "locs": {1: "priors"}}
    torch.onnx.export(net, (torch.zeros(1, 3, 480, 640),), str(path), input_names=["input"], output_names=list(OUTPUTS),
                      dynamic_axes=dyn, opset_version=opset, dynamo=False)
    embed_metadata(path, spec)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 300, 416)).astype(np.float32))
    with torch.no_grad():
        ref = [t.numpy() for t in net(x)]
    got = onnx_session(path).run(list(OUTPUTS), {"input": x.numpy()})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    if diff > 1e-4:
        raise RuntimeError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.2e}")
    return {"path": str(path), "max_abs_diff": diff, "size_bytes": path.stat().st_size, "epoch": ck["epoch"],
            "spec": json.loads(spec.to_json())}


def quantize(onnx_path: str | Path, out_path: str | Path, images: list[VocImage], min_side: int, n: int = 64) -> dict[str, Any]:
    """Static int8 quantisation (QDQ, 7-bit per-channel weights) calibrated on ``n`` training photos
    prepared as at inference."""
    from onnxruntime.quantization import CalibrationDataReader

    from ...onnxmodel import onnx_session
    from ..export import quantize_qdq

    spec = ModelSpec.from_metadata(onnx_session(onnx_path).get_modelmeta().custom_metadata_map)
    spec = ModelSpec(**{**asdict(spec), "extra": {**spec.extra, "precision": "int8"}})
    step = max(1, len(images) // n)
    chosen = images[::step][:n]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(chosen)

        def get_next(self):
            im = next(self._it, None)
            if im is None:
                return None
            image = read_image(im.path)
            scaled = ops.resize_by(image, max(1.0, min_side / max(image.shape[:2])))  # as `FaceDetector.detect`
            return {"input": rfb.normalize(scaled[None])}

    return quantize_qdq(onnx_path, out_path, Reader(), spec)
