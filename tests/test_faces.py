import numpy as np
import pytest

from maskwatch import LABELS, Faces


def make(n=3, probs=True):
    xyxy = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [100, 100, 140, 150]], np.float32)[:n]
    p = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32)[:n] if probs else None
    return Faces(xyxy=xyxy, det_score=np.array([0.9, 0.8, 0.7])[:n], probs=p, image_size=(200, 160), source="x.jpg")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"xyxy": np.zeros((3,))}, r"xyxy must be an array of shape \(N, 4\), got \(3,\)"),
        ({"xyxy": np.zeros((2, 5))}, r"xyxy must be an array of shape \(N, 4\)"),
        ({"xyxy": [[10, 0, 5, 10]]}, "x2 >= x1"),
        ({"xyxy": [[0, 0, np.nan, 10]]}, "finite"),
        ({"xyxy": [[0, 0, 5, 5]], "det_score": [0.5, 0.6]}, "det_score must have 1 rows"),
        ({"xyxy": [[0, 0, 5, 5]], "probs": [[0.5, 0.5]]}, r"probs must be an array of shape \(N, 3\)"),
        ({"xyxy": [[0, 0, 5, 5]], "landmarks": np.zeros((1, 4, 2))}, r"landmarks must be an array of shape \(N, 5, 2\)"),
        ({"xyxy": [[0, 0, 5, 5]], "track_id": [1, 2]}, "track_id must have 1 rows"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Faces(**kwargs)


def test_empty_is_safe():
    f = Faces.empty(image_size=(4, 3), source="a")
    assert len(f) == 0 and not f
    assert f.xyxy.shape == (0, 4)
    assert f.label is None
    assert f.to_dict() == {"source": "a", "width": 4, "height": 3, "faces": [], "error": None}
    assert len(f[f.det_score > 0.5]) == 0
    assert len(Faces(xyxy=[])) == 0


def test_slicing_keeps_fields_and_metadata():
    f = make()
    sub = f[f.det_score > 0.75]
    assert len(sub) == 2
    assert sub.label == ["with_mask", "without_mask"]
    assert sub.image_size == (200, 160) and sub.source == "x.jpg"
    one = f[2]
    assert isinstance(one, Faces) and one.label == ["mask_worn_incorrectly"]
    assert [len(x) for x in f] == [1, 1, 1]
    assert len(f[1:]) == 2 and len(f[np.array([0, 2])]) == 2
    with pytest.raises(IndexError):
        f[np.array([True, False])]


def test_json_contract():
    d = make().to_dict()
    assert set(d) == {"source", "width", "height", "faces", "error"}
    face = d["faces"][1]
    assert face["box"] == [5.0, 5.0, 20.0, 30.0]
    assert face["label"] == "without_mask"
    assert face["confidence"] == pytest.approx(0.8)
    assert list(face["probs"]) == list(LABELS)
    assert face["det_score"] == pytest.approx(0.8)


def test_unclassified_faces_have_no_label_fields():
    d = make(probs=False).to_dict()
    assert "label" not in d["faces"][0] and "probs" not in d["faces"][0]


def test_concatenate():
    f = make()
    joined = Faces.concatenate([f[:1], Faces.empty(), f[1:]])
    np.testing.assert_array_equal(joined.xyxy, f.xyxy)
    assert joined.label == f.label
