"""MaskClassifier on tiny hand-built ONNX models (no torch): spec metadata drives everything."""

import numpy as np
import pytest

from maskwatch import LABELS, Faces, MaskClassifier, ModelSpec, ModelSpecError

onnx = pytest.importorskip("onnx", reason="building test models needs the onnx package (train extra)")
from onnx import TensorProto, helper  # noqa: E402


def tiny_model(path, n_classes=3, spec=None, weights=None):
    """input (N,3,S,S) -> global average pool -> Gemm -> logits (N, n_classes)."""
    w = np.asarray(weights if weights is not None else np.eye(3, n_classes), np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Gemm", ["f", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, None, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if spec is not None:
        for k, v in spec.to_metadata().items():
            e = model.metadata_props.add()
            e.key, e.value = k, v
    onnx.save(model, str(path))
    return path


# Identity-ish normalisation so the mean colour of the crop decides the class.
SPEC = ModelSpec(input_size=16, mean=(0, 0, 0), std=(1, 1, 1), crop_margin=0.0)


def test_spec_round_trip_and_validation():
    assert ModelSpec.from_json(SPEC.to_json()) == SPEC
    with pytest.raises(ModelSpecError, match="kind"):
        ModelSpec(kind="segmenter")
    with pytest.raises(ModelSpecError, match="invalid maskwatch spec"):
        ModelSpec.from_json('{"input_size": 128, "bogus": 1}')


def test_colour_decides_class(tmp_path):
    clf = MaskClassifier(tiny_model(tmp_path / "m.onnx", spec=SPEC))
    crops = np.zeros((3, 16, 16, 3), np.uint8)
    for i in range(3):
        crops[i, ..., i] = 255  # red -> class 0, green -> 1, blue -> 2
    assert clf.predict_crops(crops).argmax(1).tolist() == [0, 1, 2]
    odd = np.zeros((1, 40, 30, 3), np.uint8)
    odd[..., 2] = 255
    assert clf.predict_crops(odd).argmax(1).tolist() == [2]  # other sizes are squared and resized


def test_classify_uses_the_face_crop(tmp_path):
    clf = MaskClassifier(tiny_model(tmp_path / "m.onnx", spec=SPEC))
    image = np.zeros((50, 100, 3), np.uint8)
    image[10:30, 10:30, 0] = 255  # a red face on the left
    image[10:30, 60:80, 1] = 255  # a green face on the right
    faces = clf.classify(image, Faces(xyxy=[[10, 10, 30, 30], [60, 10, 80, 30]]))
    assert faces.label == ["with_mask", "without_mask"]
    assert len(clf.classify(image, Faces.empty())) == 0


def test_crop_margin_defaults_to_the_spec_and_can_be_overridden(tmp_path):
    """A wider margin brings the surroundings into the crop: a red face ringed by green turns green."""
    path = tiny_model(tmp_path / "m.onnx", spec=SPEC)
    image = np.zeros((60, 60, 3), np.uint8)
    image[..., 1] = 255
    image[25:35, 25:35] = (255, 0, 0)
    faces = Faces(xyxy=[[25, 25, 35, 35]])
    assert MaskClassifier(path).crop_margin == SPEC.crop_margin
    assert MaskClassifier(path).classify(image, faces).label == ["with_mask"]
    assert MaskClassifier(path, crop_margin=2.0).classify(image, faces).label == ["without_mask"]


def test_two_class_model_maps_onto_three_labels(tmp_path):
    spec = ModelSpec(input_size=16, mean=(0, 0, 0), std=(1, 1, 1), labels=("without_mask", "with_mask"))
    clf = MaskClassifier(tiny_model(tmp_path / "m.onnx", n_classes=2, spec=spec, weights=np.eye(3, 2)))
    crop = np.zeros((1, 16, 16, 3), np.uint8)
    crop[..., 0] = 255  # column 0 of the model = without_mask
    probs = clf.predict_crops(crop)[0]
    assert probs[LABELS.index("mask_worn_incorrectly")] == 0
    assert probs.argmax() == LABELS.index("without_mask")


def test_model_without_spec_is_refused(tmp_path):
    with pytest.raises(ModelSpecError, match="no 'maskwatch_spec'"):
        MaskClassifier(tiny_model(tmp_path / "bare.onnx"))


def test_unknown_labels_are_refused(tmp_path):
    spec = ModelSpec(input_size=16, labels=("cat", "dog", "bird"))
    with pytest.raises(ModelSpecError, match="not maskwatch labels"):
        MaskClassifier(tiny_model(tmp_path / "m.onnx", spec=spec))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        MaskClassifier(tmp_path / "nope.onnx")


def test_onnx_sessions_do_not_spin_unless_asked(tmp_path, monkeypatch):
    from maskwatch.onnxmodel import onnx_session

    path = tiny_model(tmp_path / "m.onnx", spec=SPEC)
    opts = onnx_session(path).get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    monkeypatch.setenv("MASKWATCH_SPINNING", "stop")
    opts = onnx_session(path).get_session_options()
    assert opts.get_session_config_entry("session.force_spinning_stop") == "1"
    assert onnx_session(path, spinning="on").get_session_options().get_session_config_entry(
        "session.intra_op.allow_spinning") == "1"
    with pytest.raises(ValueError, match="spinning"):
        onnx_session(path, spinning="sometimes")
