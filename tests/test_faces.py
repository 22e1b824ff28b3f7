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


def test_merge_keeps_every_field():
    f = Faces(xyxy=make().xyxy, det_score=[0.9, 0.8, 0.7], probs=make().probs, track_id=[4, 5, 6],
              landmarks=np.ones((3, 5, 2)), image_size=(200, 160), source="x.jpg", data={"k": np.arange(3)})
    joined = Faces.merge([f[:1], Faces.empty(), f[1:]])
    assert joined == f  # every array, data included, and the metadata
    assert joined.label == f.label
    assert Faces.merge([Faces.empty(source="a")]) == Faces.empty(source="a")
    assert len(Faces.merge([])) == 0


@pytest.mark.parametrize("parts, message", [
    ([make(), make(probs=False)], "All or none of the 'probs' fields must be None"),
    ([make(), Faces(xyxy=[[0, 0, 1, 1]], landmarks=np.zeros((1, 5, 2)), probs=[[1, 0, 0]], image_size=(200, 160),
                    source="x.jpg")], "'landmarks'"),
    ([make(), make().with_meta(source="y.jpg")], "different source"),
    ([make(), make().with_meta(image_size=(10, 10))], "different image_size"),
    ([make(), make().with_meta(data={"k": np.arange(3)})], "data key"),
])
def test_merge_refuses_parts_with_mismatched_fields(parts, message):
    with pytest.raises(ValueError, match=message):
        Faces.merge(parts)


def test_merge_skips_empty_parts_whatever_their_fields():
    f = make(probs=False)
    assert Faces.merge([Faces.empty(), f, make()[:0]]) == f


@pytest.mark.parametrize("a, b, equal", [
    (make(), make(), True),
    (make(), make(probs=False), False),
    (make(), make()[:2], False),
    (make(), make().with_meta(source="y.jpg"), False),
    (make(), make().with_scores(np.array([0.9, 0.8, 0.6])), False),
    (make(), make().with_meta(data={"k": np.arange(3)}), False),
    (Faces.empty(), Faces(xyxy=[]), True),
])
def test_equality_compares_every_field(a, b, equal):
    assert (a == b) is equal and (a != b) is not equal


def test_without_removes_optional_fields_only():
    assert make().without("probs").probs is None and make().without("probs").xyxy.shape == (3, 4)
    with pytest.raises(ValueError, match="only optional fields"):
        make().without("xyxy")


def test_transformed_scales_then_shifts_boxes_and_landmarks():
    f = Faces(xyxy=[[10, 20, 30, 40]], landmarks=np.full((1, 5, 2), 10.0), track_id=[3])
    t = f.transformed((2.0, 0.5), (1.0, 2.0))
    assert t.xyxy.tolist() == [[21, 12, 61, 22]] and t.landmarks[0, 0].tolist() == [21, 7]
    assert t.track_id.tolist() == [3]


@pytest.mark.parametrize("boxes, scores, vote, expected", [
    ([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], [0.6, 0.9, 0.5], None,
     [[1, 1, 11, 11], [50, 50, 60, 60]]),  # the best of the pair survives, order kept
    ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.6, 0.2], 0.5, [[0.25, 0.25, 10.25, 10.25]]),  # (0.6*0 + 0.2*1) / 0.8
    ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.6, 0.2], 0.9, [[0, 0, 10, 10]]),  # IoU 0.68: no vote at 0.9
    ([[0, 0, 10, 10]], [0.6], 0.5, [[0, 0, 10, 10]]),
    (np.zeros((0, 4)), [], 0.5, np.zeros((0, 4))),
])
def test_nms_and_box_voting_table(boxes, scores, vote, expected):
    kept = Faces(xyxy=boxes, det_score=scores).nms(0.5, vote)
    np.testing.assert_allclose(kept.xyxy, np.asarray(expected, np.float32).reshape(-1, 4), atol=1e-5)


def test_counts_per_label_and_compliant_share():
    from maskwatch.labels import LabelCounts

    probs = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0, 0, 0]], np.float32)
    faces = Faces(np.tile(np.array([[0, 0, 10, 10]], np.float32), (4, 1)), probs=probs)
    c = faces.counts()
    assert c.counts == {"with_mask": 2, "without_mask": 1, "mask_worn_incorrectly": 0}
    assert c.unclassified == 1 and c.total == 4 and c.compliant_share == pytest.approx(2 / 3)
    assert c.to_dict() == {"with_mask": 2, "without_mask": 1, "mask_worn_incorrectly": 0, "unclassified": 1,
                           "faces": 4, "compliant_share": 0.6667}
    batch = sum([c, Faces.empty().counts(), Faces(np.zeros((2, 4), np.float32)).counts()])
    assert batch.images == 3 and batch.total == 6 and batch.unclassified == 3 and batch.counts["with_mask"] == 2
    assert Faces.empty().counts().compliant_share is None and LabelCounts().to_dict()["compliant_share"] is None
