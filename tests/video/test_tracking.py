import numpy as np
import pytest

from maskwatch.faces import Faces
from maskwatch.video.tracking import FaceTracker, KalmanBoxFilter, LabelSmoother, match_greedy


def boxes_at(centres, size=40.0):
    c = np.asarray(centres, np.float32).reshape(-1, 2)
    return np.concatenate([c - size / 2, c + size / 2], axis=1)


def test_ids_stable_for_moving_faces():
    tracker = FaceTracker()
    seen = []
    for i in range(30):
        faces = Faces(boxes_at([[50 + 3 * i, 60], [250 - 3 * i, 160]]), det_score=[0.9, 0.9])
        out = tracker.update(faces, image_size=(320, 240))
        seen.append(out.track_id.tolist())
    assert all(ids == [1, 2] for ids in seen)


def test_track_survives_missed_detections_and_coasts():
    tracker = FaceTracker(max_age=5, coast=2)
    for i in range(10):
        tracker.update(Faces(boxes_at([[50 + 4 * i, 60]])), image_size=(320, 240))
    coasted = tracker.update(None, image_size=(320, 240))
    assert coasted.track_id.tolist() == [1]
    assert coasted.xyxy[0, 0] > 50 + 4 * 9 - 20 + 1  # predicted forward, not frozen
    tracker.update(None)
    assert len(tracker.update(None)) == 0  # beyond coast: not reported ...
    back = tracker.update(Faces(boxes_at([[50 + 4 * 13, 60]])), image_size=(320, 240))
    assert back.track_id.tolist() == [1]  # ... but still alive within max_age


def test_track_retires_after_max_age():
    tracker = FaceTracker(max_age=2)
    tracker.update(Faces(boxes_at([[50, 60]])))
    for _ in range(3):
        tracker.update(Faces.empty())
    assert tracker.removed == [1]
    assert tracker.update(Faces(boxes_at([[50, 60]]))).track_id.tolist() == [2]


def test_weak_detection_does_not_start_a_track():
    tracker = FaceTracker(new_track_score=0.7)
    assert len(tracker.update(Faces(boxes_at([[50, 60]]), det_score=[0.5]))) == 0
    tracker.update(Faces(boxes_at([[50, 60]]), det_score=[0.9]))
    assert tracker.update(Faces(boxes_at([[52, 60]]), det_score=[0.5])).track_id.tolist() == [1]


def test_empty_and_landmarks():
    tracker = FaceTracker(coast=1)
    out = tracker.update(Faces.empty(), image_size=(10, 10))
    assert len(out) == 0 and out.track_id is not None
    lm = np.tile(np.array([[40, 50]], np.float32), (5, 1))[None]
    tracker.update(Faces(boxes_at([[50, 60]]), landmarks=lm))
    assert tracker.update(None).landmarks.shape == (1, 5, 2)


@pytest.mark.parametrize("iou, threshold, expected", [
    (np.zeros((0, 0)), 0.3, []),
    (np.array([[0.9, 0.5], [0.6, 0.1]]), 0.3, [(0, 0)]),
    (np.array([[0.5, 0.9], [0.6, 0.1]]), 0.3, [(0, 1), (1, 0)]),
    (np.array([[0.2]]), 0.3, []),
])
def test_match_greedy(iou, threshold, expected):
    assert sorted(match_greedy(iou, threshold)) == sorted(expected)


def test_kalman_learns_velocity():
    kf = KalmanBoxFilter(np.array([0, 0, 10, 10], np.float32))
    for i in range(1, 10):
        kf.predict()
        kf.update(np.array([5 * i, 0, 5 * i + 10, 10], np.float32))
    assert kf.predict()[0] == pytest.approx(50, abs=2)


MASK, NOMASK = [0.9, 0.08, 0.02], [0.1, 0.85, 0.05]


def test_smoothing_suppresses_a_single_frame_flip():
    s = LabelSmoother(alpha=0.3, hysteresis=0.2)
    labels = []
    for p in [MASK] * 10 + [NOMASK] + [MASK] * 5:
        s.update(np.array([7]), np.array([p]))
        labels.append(int(s.probs(np.array([7]))[0].argmax()))
    assert labels == [0] * 16


def test_unsmoothed_flips_and_smoothed_follows_a_real_change():
    raw = LabelSmoother(alpha=1.0, hysteresis=0.0)
    smooth = LabelSmoother()
    seq = [MASK] * 5 + [NOMASK] + [MASK] * 5 + [NOMASK] * 10
    raw_labels, smooth_labels = [], []
    for p in seq:
        for s, out in ((raw, raw_labels), (smooth, smooth_labels)):
            s.update(np.array([1]), np.array([p]))
            out.append(int(s.probs(np.array([1]))[0].argmax()))
    assert raw_labels[5] == 1 and smooth_labels[5] == 0
    assert smooth_labels[-1] == 1  # a lasting change does come through


def test_smoother_probs_are_distributions_and_consistent():
    s = LabelSmoother(alpha=0.5, hysteresis=0.3)
    s.update(np.array([1, 2]), np.array([MASK, NOMASK]))
    s.update(np.array([1]), np.array([[0.4, 0.6, 0.0]]))
    p = s.probs(np.array([1, 2, 3]))
    assert np.allclose(p[:2].sum(axis=1), 1) and not p[2].any()
    assert p[0].argmax() == 0  # 0.65 vs 0.34: within hysteresis, label held
    s.forget([1])
    assert not s.has(1) and s.has(2)


@pytest.mark.parametrize("kwargs", [dict(alpha=0), dict(alpha=1.5), dict(hysteresis=1.0), dict(hysteresis=-0.1)])
def test_smoother_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        LabelSmoother(**kwargs)


def test_sudden_box_change_keeps_the_track():
    """A face sliding half out of the picture: the detector's box shrinks to a sliver, IoU < 0.3."""
    tracker = FaceTracker()
    tracker.update(Faces(np.array([[100, 100, 200, 200]], np.float32)))
    out = tracker.update(Faces(np.array([[140, 120, 175, 180]], np.float32)))
    assert out.track_id.tolist() == [1]
    far = tracker.update(Faces(np.array([[300, 100, 400, 200]], np.float32)))
    assert far.track_id.tolist() == [2]  # but a face elsewhere is someone else


def test_centre_fallback_can_be_turned_off():
    tracker = FaceTracker(centre_distance=0)
    tracker.update(Faces(np.array([[100, 100, 200, 200]], np.float32)))
    assert tracker.update(Faces(np.array([[140, 120, 175, 180]], np.float32))).track_id.tolist() == [2]


def test_one_pass_detector_classes_are_smoothed_per_track():
    """Behind a detector that labels the masks itself (no classifier), each track's label is the
    moving average of its detections' classes: a one-frame flip does not show, a lasting change does."""
    from maskwatch import Faces
    from maskwatch.pipeline import Pipeline
    from maskwatch.video.analyzer import TrackingConfig, VideoAnalyzer

    frames = iter([0] * 4 + [1] + [0] * 3 + [1] * 8)  # class per frame: one flip, then a real change

    def detector(image):
        p = np.zeros((1, 3), np.float32)
        p[0, next(frames)] = 0.95
        p[0, 2] = 0.05
        return Faces(xyxy=np.float32([[40, 40, 80, 90]]), det_score=np.float32([0.9]), probs=p)

    analyzer = VideoAnalyzer(Pipeline(detector, None), TrackingConfig(detect_every=1))
    image = np.zeros((120, 160, 3), np.uint8)
    labels = [analyzer.process(image).label[0] for _ in range(16)]
    assert labels[:8] == ["with_mask"] * 8  # frame 5's flip is smoothed away
    assert labels[-1] == "without_mask"  # the lasting change shows
