"""Evaluate classifiers (checkpoint or ONNX) on labelled crops, with the report of `report.py`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..labels import LABELS
from ..spec import ModelSpec
from . import data as D
from .report import write_report

#: fmd faces at least this large (shorter side, px) form the ``fmd_gt24`` subset of the targets.
SMALL_FACE = 24


def predictor(model_path: str | Path) -> tuple[Callable[[np.ndarray], np.ndarray], ModelSpec]:
    """(crops -> probs, spec) for an ONNX file or a ``.pt`` checkpoint."""
    model_path = Path(model_path)
    if model_path.suffix == ".pt":
        import torch

        from .engine import load_checkpoint

        model, spec, _ = load_checkpoint(model_path)

        def run(crops: np.ndarray) -> np.ndarray:
            from .. import ops

            out = []
            with torch.no_grad():
                for i in range(0, len(crops), 128):
                    x = torch.from_numpy(ops.normalize(crops[i : i + 128], spec.mean, spec.std))
                    out.append(torch.softmax(model(x), 1).numpy())
            return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)

        return run, spec
    from ..classifier import MaskClassifier

    clf = MaskClassifier(model_path)
    return clf.predict_crops, clf.spec


def subsets(samples: list[D.Sample]) -> dict[str, np.ndarray]:
    """Boolean masks: one per source, plus ``fmd_gt24`` (VOC faces larger than 24 px)."""
    out = {}
    sources = np.array([s.source for s in samples])
    for name in sorted(set(sources)):
        out[f"source:{name}"] = sources == name
    sizes = np.array([D.face_size(s) for s in samples])
    boxed = np.array([s.box is not None and s.source == "fmd" for s in samples])
    out[f"fmd_gt{SMALL_FACE}"] = boxed & (sizes > SMALL_FACE) & np.isfinite(sizes)
    return out


def evaluate_samples(model_path: str | Path, samples: list[D.Sample], out: Path, name: str = "eval",
                     history: list | None = None, progress: bool = True) -> dict[str, Any]:
    predict, spec = predictor(model_path)
    crops, ok = D.nominal_crops(samples, spec.input_size, spec.crop_margin, progress)
    samples = [s for s, good in zip(samples, ok) if good]
    crops = crops[ok]
    y = np.array([s.label for s in samples], np.int64)
    probs = predict(crops)
    result = write_report(out, y, probs, subsets(samples), history, name)
    result["model"] = str(model_path)
    (out / f"{name}_metrics.json").write_text(json.dumps(result, indent=2))
    return result


def evaluate_model(model_path: str | Path, out: Path, data: list[str] = (), recrop: list[str] = (),
                   split: str | None = None, name: str = "eval", progress: bool = True) -> dict[str, Any]:
    """Evaluate on the validation side of ``split`` (a run's split.json) or on whole sources."""
    if split:
        samples = D.samples_from_rows(json.loads(Path(split).read_text())["val"])
    else:
        samples = D.scan_sources(list(data), list(recrop))
    return evaluate_samples(model_path, samples, Path(out), name, progress=progress)


def evaluate_run(run_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Validation report of a finished run (best.pt), with its training curves."""
    run_dir = Path(run_dir)
    history = json.loads((run_dir / "history.json").read_text()) if (run_dir / "history.json").exists() else None
    return evaluate_model(run_dir / "best.pt", run_dir, split=str(run_dir / "split.json"), name="val",
                          progress=progress) if history is None else evaluate_samples(
        run_dir / "best.pt", D.samples_from_rows(json.loads((run_dir / "split.json").read_text())["val"]), run_dir,
        "val", history, progress)
