"""The LiteRT export of the shipped models (`maskwatch.train.litert`, the 'tflite' extra): the files,
their specs, and their parity with ONNX Runtime, tensor by tensor and on whole photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))


def photos(shared: Path, n: int = 4) -> list[np.ndarray]:
    """The examples/ photos and the first ``n`` of fmd's validation photos, if the shared data is here."""
    from maskwatch.imageio import read_image

    paths = list(EXAMPLES)
    if (shared / "fmd" / "annotations").is_dir():
        from maskwatch.cli.layout import SHARED_LAYOUT
        from maskwatch.evaluation import load_split

        paths += [im.path for im in load_split(shared / "fmd", "val", n, layout=SHARED_LAYOUT)[1]]
    return [read_image(p) for p in paths]


@pytest.fixture
def models_dir(litert_models, monkeypatch):
    monkeypatch.setenv("MASKWATCH_MODELS", str(litert_models[0]))
    return litert_models[0]


def test_export_writes_four_files_with_their_specs(litert_models):
    from maskwatch import registry
    from maskwatch.litertmodel import read_metadata
    from maskwatch.onnxmodel import OnnxModel
    from maskwatch.spec import METADATA_KEY, ModelSpec

    out, report = litert_models
    for stem, onnx_name, kind in (("maskwatch_rfb", "maskwatch-rfb", "detector"),
                                  ("mask_classifier", "mask-classifier", "classifier")):
        shipped = OnnxModel(registry.resolve(onnx_name), kind).spec
        assert ModelSpec.from_json((out / f"{stem}.json").read_text()) == shipped
        for precision in ("float32", "int8"):
            meta = read_metadata(out / f"{stem}_{precision}.tflite")
            assert ModelSpec.from_json(meta[METADATA_KEY]) == shipped
    for part in ("detector", "classifier"):
        assert set(report[part]["int8"]["operators"]) == {"integer"}  # full-integer: no float operator
        assert report[part]["float32"]["operators"].get("float32", 0) > 0
    total = sum(report[part]["int8"]["size_bytes"] for part in ("detector", "classifier"))
    assert total <= 4 * 1024 * 1024


def test_tensor_parity(models_dir, shared_data_or_none):
    from maskwatch import registry
    from maskwatch.detectors import build
    from maskwatch.litertmodel import LiteRTModel
    from maskwatch.onnxmodel import OnnxModel
    from maskwatch.train.litert import compare, detector_inputs

    inputs, _ = detector_inputs(photos(shared_data_or_none), build("rfb"))
    assert len({x.shape for x in inputs}) > 1  # the files take any input size
    onnx = OnnxModel(registry.resolve("maskwatch-rfb"), "detector")
    f32 = compare(onnx, LiteRTModel(models_dir / "maskwatch_rfb_float32.tflite", "detector"), inputs)
    i8 = compare(onnx, LiteRTModel(models_dir / "maskwatch_rfb_int8.tflite", "detector"), inputs)
    assert set(f32) == set(i8) == {"scores", "locs"}
    assert f32["scores"] < 1e-4 and f32["locs"] < 1e-3
    assert i8["scores"] < 0.5  # a probability: int8 moves it, it does not scramble it
    clf_onnx = OnnxModel(registry.resolve("mask-classifier"), "classifier")
    crops = np.random.default_rng(0).normal(0, 1, (5, 3, 128, 128)).astype(np.float32)
    assert compare(clf_onnx, LiteRTModel(models_dir / "mask_classifier_float32.tflite", "classifier"),
                   [crops])["logits"] < 1e-3


def _matched(a, b, iou: float) -> float:
    """Share of ``a``'s faces that a face of ``b`` overlaps with IoU >= ``iou`` and the same label."""
    from maskwatch.ops import box_iou

    if len(a) == 0:
        return 1.0
    if len(b) == 0:
        return 0.0
    ious = box_iou(a.xyxy, b.xyxy)
    best = ious.argmax(1)
    same = np.asarray(a.label) == np.asarray(b.label)[best]
    return float(np.mean((ious.max(1) >= iou) & same))


def test_whole_photo_faces_match_onnx(models_dir, shared_data_or_none):
    import maskwatch

    images = photos(shared_data_or_none)
    onnx = maskwatch.load(classifier=None)  # the detector alone: the conversion of one network
    f32 = maskwatch.load(runtime="tflite", classifier=None)
    i8 = maskwatch.load(runtime="tflite-int8", classifier=None)
    assert f32.describe()["detector"]["model"] == "maskwatch_rfb_float32.tflite"
    for image in images:
        ref, got = onnx.detect(image), f32.detect(image)
        assert len(got) == len(ref)
        np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=0.05)
        np.testing.assert_allclose(got.det_score, ref.det_score, atol=1e-4)
        np.testing.assert_allclose(got.probs, ref.probs, atol=1e-3)
        sure = ref[ref.det_score >= 0.8]
        assert _matched(sure, i8.detect(image), 0.6) >= 0.75  # int8: the clear faces, same place and label


def test_classifier_runtime_matches_its_onnx_original(models_dir):
    import maskwatch
    from maskwatch import registry
    from maskwatch.classifier import MaskClassifier
    from maskwatch.imageio import read_image

    image = read_image(EXAMPLES[-1])
    faces = maskwatch.load().find_faces(image)
    ref = MaskClassifier(registry.resolve("mask-classifier")).classify(image, faces)
    got = maskwatch.load(classifier="default", runtime="tflite").classify(image, faces)
    np.testing.assert_allclose(got.probs, ref.probs, atol=1e-4)
    int8 = maskwatch.load(classifier="default", runtime="tflite-int8").classify(image, faces)
    assert int8.label == ref.label


def test_spec_json_is_what_the_cli_report_names(litert_models):
    out, report = litert_models
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [report[m][p]["file"] for m in ("detector", "classifier") for p in ("float32", "int8")]
        + ["maskwatch_rfb.json", "mask_classifier.json"])
    assert json.loads((out / "maskwatch_rfb.json").read_text())["extra"]["strides"] == [8, 16, 32, 64]
