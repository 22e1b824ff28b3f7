"""The LiteRT loader (`maskwatch.litertmodel`): metadata in and out of a .tflite file, the spec
checks `OnnxModel` makes too, and the file a runtime asks for when it is missing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import maskwatch
from maskwatch.errors import ModelNotFoundError, ModelSpecError


def test_missing_tflite_file_names_the_export_command(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKWATCH_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="maskwatch export default --format tflite"):
        maskwatch.load(runtime="tflite")


@pytest.mark.parametrize("kwargs, message", [
    ({"detector": "yunet", "runtime": "tflite"}, "has no 'tflite' runtime; detectors that have: rfb"),
    ({"runtime": "tensorrt"}, "runtime must be one of"),
])
def test_unsupported_runtime_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        maskwatch.load(**kwargs)


def test_metadata_round_trip_and_spec_checks(litert_models, tmp_path):
    from maskwatch.litertmodel import LiteRTModel, open_model, read_metadata, rewrite
    from maskwatch.spec import METADATA_KEY

    src = litert_models[0] / "mask_classifier_float32.tflite"
    path = tmp_path / "copy.tflite"
    shutil.copy(src, path)
    rewrite(path, metadata={"note": "héllo"})
    meta = read_metadata(path)
    assert meta["note"] == "héllo" and meta[METADATA_KEY] == read_metadata(src)[METADATA_KEY]
    model = open_model(path, "classifier")
    assert isinstance(model, LiteRTModel) and model.output_names == ["logits"]
    x = np.zeros((3, 128, 128, 3), np.float32)  # NHWC
    assert model.run(None, x)[0].shape == (3, 3) and model.run(["logits"], x[:1])[0].shape == (1, 3)
    with pytest.raises(ModelSpecError, match="expected 'detector'"):
        LiteRTModel(path, "detector")
    rewrite(path, metadata={METADATA_KEY: '{"kind": "classifier", "labels": ["cat"]}'})
    with pytest.raises(ModelSpecError, match="not maskwatch labels"):
        LiteRTModel(path, "classifier")
    other = tmp_path / "x.tflite"
    other.write_bytes(b"not a model at all")
    with pytest.raises(ModelSpecError, match="not a TFLite model file"):
        LiteRTModel(other, "classifier")
