"""Shared fixtures. Data and third-party models are read in place from ../shared (never copied);
tests that need them skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MASKWATCH_SHARED", ROOT.parent / "shared"))
SHARED_MODELS = SHARED / "models"
SHARED_DATA = SHARED / "data"


def pytest_configure(config):
    # Model files come from ../shared/models here (no network): the registry's MASKWATCH_MODELS.
    if SHARED_MODELS.is_dir() and "MASKWATCH_MODELS" not in os.environ:
        os.environ["MASKWATCH_MODELS"] = str(SHARED_MODELS)
    os.environ.setdefault("MASKWATCH_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets an empty cache folder, so nothing leaks between tests or into ~/.cache."""
    monkeypatch.setenv("MASKWATCH_HOME", str(tmp_path_factory.mktemp("mwhome")))


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not (SHARED_MODELS / "face_detection_yunet_2023mar.onnx").is_file():
        pytest.skip(f"third-party face detector models not found in {SHARED_MODELS}")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fmd" / "annotations").is_dir():
        pytest.skip(f"shared datasets not found in {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut photo (Eileen Collins): one clear frontal face."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) provides the photo")
    return skimage_data.astronaut()


@pytest.fixture(scope="session")
def astronaut_face() -> tuple[float, float, float, float]:
    """Approximate face box of `astronaut` (x1, y1, x2, y2), checked by hand."""
    return (175.0, 60.0, 272.0, 180.0)


@pytest.fixture(scope="session")
def litert_models(tmp_path_factory) -> tuple[Path, dict]:
    """``maskwatch export default --format tflite`` once per session (a few minutes): the folder of
    LiteRT files and the command's report. Calibrated on 32 photos of fmd's training side (the
    examples/ photos where the shared data is absent). The converter runs in a child process: TensorFlow
    loaded into the test process made a later Playwright test crash it (segmentation fault)."""
    import json
    import subprocess
    import sys

    import importlib.util

    for module in ("tensorflow", "onnx2tf", "ai_edge_litert"):  # looked up, not imported (see above)
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the 'tflite' extra converts the models: no {module}")
    out = tmp_path_factory.mktemp("litert")
    data = SHARED_DATA / "fmd" if (SHARED_DATA / "fmd" / "annotations").is_dir() else ROOT / "examples"
    done = subprocess.run([sys.executable, "-m", "maskwatch.cli", "export", "default", "--format", "tflite", "-o",
                           str(out), "--calibration-data", str(data), "--calibration-photos", "32", "--calibration", "128"],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, json.loads(done.stdout)


@pytest.fixture(scope="session")
def shared_data_or_none() -> Path:
    """The shared data folder, whether or not it is here (tests that use it where present)."""
    return SHARED_DATA
