"""Detector checkpoints -> ONNX (dynamic height / width, spec in the metadata, checked against PyTorch) -> int8."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...datasets import VocImage
from ...imageio import read_image
from ...onnxmodel import onnx_session
from ...spec import ModelSpec
from ..checkpoint import load_state
from ..detector_config import DetectorConfig
from ..export import embed_metadata, quantize_qdq
from .model import MEAN, STD, CenterFaceNet, spec_for


def load_checkpoint(path: str | Path) -> tuple[CenterFaceNet, DetectorConfig, dict]:
    """(model in eval mode, config, checkpoint dict) of a ``.pt`` checkpoint."""
    ck = load_state(path)
    raw = dict(ck["config"])
    for key in ("crop_sizes", "scale_range"):
        raw[key] = tuple(raw[key])
    cfg = DetectorConfig(**raw)
    model = CenterFaceNet(channels=cfg.channels)
    model.load_state_dict(ck["model"])
    return model.eval(), cfg, ck


def export(checkpoint: str | Path, path: str | Path, scale: float | None = None, opset: int = 17) -> dict[str, Any]:
    """Export ``checkpoint`` to ONNX (dynamic height/width) with its spec; check it against PyTorch.

    The spec is the checkpoint's own (older checkpoints without one: rebuilt from their config);
    ``scale`` replaces its inference scale."""
    model, cfg, ck = load_checkpoint(checkpoint)
    spec = ModelSpec.from_json(ck["spec"]) if "spec" in ck else spec_for(cfg)
    spec = ModelSpec(**{**asdict(spec), "extra": {**spec.extra, "scale": scale or spec.extra["scale"]}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 320, 320)
    dyn = {"input": {2: "height", 3: "width"}, "heat": {2: "h", 3: "w"}, "cls": {2: "h", 3: "w"}, "box": {2: "h", 3: "w"}}
    torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["heat", "cls", "box"],
                      dynamic_axes=dyn, opset_version=opset, dynamo=False)
    embed_metadata(path, spec)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 256, 352)).astype(np.float32))
    with torch.no_grad():
        ref = [t.numpy() for t in model(x)]
    sess = onnx_session(path)
    got = sess.run(["heat", "cls", "box"], {"input": x.numpy()})
    # cls / box must agree; a face-centre peak may flip where neighbours tie to float precision
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref[1:], got[1:]))
    both = (ref[0] > 0) & (got[0] > 0)
    diff = max(diff, float(np.abs(ref[0] - got[0])[both].max()) if both.any() else 0.0)
    flipped = float(((ref[0] > 0) != (got[0] > 0)).mean())
    if diff > 1e-3 or flipped > 0.01:
        raise RuntimeError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.2e} "
                           f"({flipped:.1%} of face-centre peaks differ)")
    return {"path": str(path), "max_abs_diff": diff, "peaks_differing": flipped, "size_bytes": path.stat().st_size,
            "spec": json.loads(spec.to_json())}


def quantize(onnx_path: str | Path, out_path: str | Path, images: list[VocImage], scale: float, n: int = 32) -> dict[str, Any]:
    """Static int8 quantisation (QDQ, per-channel weights) calibrated on ``n`` training images."""
    from onnxruntime.quantization import CalibrationDataReader

    from ...detectors.maskwatch import preprocess

    spec = ModelSpec.from_metadata(onnx_session(onnx_path).get_modelmeta().custom_metadata_map)
    spec = ModelSpec(**{**asdict(spec), "extra": {**spec.extra, "precision": "int8"}})

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(images[:n])

        def get_next(self):
            im = next(self._it, None)
            return None if im is None else {"input": preprocess(read_image(im.path), scale, MEAN, STD)[0]}

    return quantize_qdq(onnx_path, out_path, Reader(), spec)
