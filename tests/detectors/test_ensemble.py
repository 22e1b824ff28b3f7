"""Ensemble: union of members' faces, score weights, NMS (fake members, no models)."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch import Faces
from maskwatch.detectors import FaceDetector
from maskwatch.detectors import Ensemble


class Fixed(FaceDetector):
    """Returns the same faces for any image."""

    def __init__(self, name: str, xyxy, scores, landmarks: bool = False):
        super().__init__()
        self.name, self.xyxy, self.scores, self.landmarks = name, np.float32(xyxy), np.float32(scores), landmarks

    def _detect(self, image):
        lms = np.zeros((len(self.xyxy), 5, 2), np.float32) if self.landmarks else None
        return Faces(xyxy=self.xyxy.reshape(-1, 4), det_score=self.scores, landmarks=lms)


IMAGE = np.zeros((100, 200, 3), np.uint8)


def test_union_keeps_faces_either_member_finds_and_merges_shared_ones():
    a = Fixed("a", [[10, 10, 30, 30], [100, 10, 130, 40]], [0.9, 0.8], landmarks=True)
    b = Fixed("b", [[11, 11, 31, 31], [150, 50, 180, 90]], [0.95, 0.4])
    ens = Ensemble([a, b], weights=[1.0, 0.5], nms_threshold=0.5)
    faces = ens.detect(IMAGE)
    assert ens.name == "a+b" and faces.image_size == (200, 100)
    # the shared face keeps a's box (0.9 beats 0.95 * 0.5); b's own face keeps its weighted score
    assert faces.xyxy.tolist() == [[10, 10, 30, 30], [100, 10, 130, 40], [150, 50, 180, 90]]
    assert faces.det_score.tolist() == pytest.approx([0.9, 0.8, 0.2])
    assert faces.landmarks is None  # only one member has landmarks


def test_equal_weights_let_the_higher_score_win_and_nms_threshold_matters():
    a = Fixed("a", [[10, 10, 30, 30]], [0.6])
    b = Fixed("b", [[12, 12, 32, 32]], [0.7])
    assert Ensemble([a, b]).detect(IMAGE).xyxy.tolist() == [[12, 12, 32, 32]]
    assert len(Ensemble([a, b], nms_threshold=0.9).detect(IMAGE)) == 2  # IoU 0.68: kept apart


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="2 weights for 1 detectors"):
        Ensemble([Fixed("a", [[0, 0, 1, 1]], [1])], weights=[1, 2])


def test_box_voting_averages_the_boxes_of_a_shared_face_by_score():
    a = Fixed("a", [[10, 10, 30, 30], [100, 10, 130, 40]], [0.6, 0.8])
    b = Fixed("b", [[14, 14, 34, 34]], [0.2])
    faces = Ensemble([a, b], box_voting=True).detect(IMAGE)
    # IoU 0.47 < 0.5: not the same face, nothing to vote on
    assert faces.xyxy.tolist() == [[10, 10, 30, 30], [100, 10, 130, 40], [14, 14, 34, 34]]
    b = Fixed("b", [[12, 12, 32, 32]], [0.2])
    faces = Ensemble([a, b], box_voting=True).detect(IMAGE)
    assert len(faces) == 2
    assert faces.xyxy[0] == pytest.approx([10.5, 10.5, 30.5, 30.5])  # (0.6 * 10 + 0.2 * 12) / 0.8
    assert faces.det_score.tolist() == pytest.approx([0.6, 0.8])  # the surviving face's score
    assert faces.xyxy[1].tolist() == [100, 10, 130, 40]
    assert Ensemble([a, b]).detect(IMAGE).xyxy[0].tolist() == [10, 10, 30, 30]  # off: the best box


def test_vote_threshold_above_nms_suppresses_loose_boxes_without_their_vote():
    a = Fixed("a", [[10, 10, 30, 30]], [0.6])
    b = Fixed("b", [[12, 12, 32, 32]], [0.2])  # IoU 0.68 with a: votes
    c = Fixed("c", [[16, 16, 36, 36]], [0.3])  # IoU 0.33 with a: suppressed at NMS 0.2, no vote at 0.5
    faces = Ensemble([a, b, c], nms_threshold=0.2, box_voting=True, vote_threshold=0.5).detect(IMAGE)
    assert len(faces) == 1
    assert faces.xyxy[0] == pytest.approx([10.5, 10.5, 30.5, 30.5])  # (0.6 * 10 + 0.2 * 12) / 0.8
    faces = Ensemble([a, b, c], nms_threshold=0.2, box_voting=True).detect(IMAGE)  # votes from 0.2
    assert faces.xyxy[0] == pytest.approx([10 + (0.2 * 2 + 0.3 * 6) / 1.1] * 2 + [30 + (0.2 * 2 + 0.3 * 6) / 1.1] * 2)
    assert len(Ensemble([a, b, c], nms_threshold=0.5).detect(IMAGE)) == 2  # c kept apart at 0.5


def test_solo_thresholds_keep_a_low_scored_face_only_where_another_member_finds_it():
    a = Fixed("a", [[10, 10, 30, 30], [100, 10, 130, 40]], [0.9, 0.05])  # solo 0.2: the second needs b
    b = Fixed("b", [[101, 11, 131, 41], [150, 50, 180, 90], [60, 60, 80, 80]], [0.35, 0.6, 0.4])  # solo 0.5
    ens = Ensemble([a, b], nms_threshold=0.2, solo_thresholds=[0.2, 0.5], agree_iou=0.3)
    faces = ens.detect(IMAGE)
    # a's sure face, the face both find (b's 0.35 wins NMS), b's sure face; b's lone 0.4 face is dropped
    assert faces.xyxy.tolist() == [[10, 10, 30, 30], [101, 11, 131, 41], [150, 50, 180, 90]]
    assert ens.score_threshold == 0.2
    # without solo thresholds every face a member returns is kept
    assert len(Ensemble([a, b], nms_threshold=0.2).detect(IMAGE)) == 4
    # agreement needs the overlap: at IoU 0.95 the two boxes (IoU 0.88) are not the same face
    assert len(Ensemble([a, b], nms_threshold=0.2, solo_thresholds=[0.2, 0.5], agree_iou=0.95).detect(IMAGE)) == 2
    with pytest.raises(ValueError, match="1 solo thresholds for 2 detectors"):
        Ensemble([a, b], solo_thresholds=[0.2])


def test_default_ensemble_settings():
    from maskwatch.detectors import create_detector, entry

    try:
        ens = create_detector("yunet+maskwatch")
    except FileNotFoundError as exc:
        pytest.skip(f"ensemble models not available: {exc}")
    measured = entry("yunet+maskwatch").defaults
    assert ens.box_voting is measured["box_voting"] is True
    assert (ens.nms_threshold, ens.vote_threshold) == (measured["nms_threshold"], measured["vote_threshold"]) == (0.2, 0.5)
    assert [d.describe()["score_threshold"] for d in ens.detectors] == [0.02, 0.3]  # what each member sees
    assert ens.solo_thresholds == [m["solo"] for m in measured["members"].values()] == [0.2, 0.5]
    assert ens.agree_iou == 0.3 and ens.score_threshold == 0.2
    plain = create_detector("yunet+maskwatch", score_threshold=0.4)  # an explicit threshold: the plain union
    assert [d.describe()["score_threshold"] for d in plain.detectors] == [0.4, 0.4] and plain.solo_thresholds is None
