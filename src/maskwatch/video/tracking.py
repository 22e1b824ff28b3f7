"""Face tracking across frames and label smoothing over time.

* `FaceTracker` gives every face a stable ``track_id``: a constant-velocity Kalman filter per
  track predicts where the face is in the next frame, and detections are matched to predictions
  by IoU (greedy, best pair first: exact enough for the handful of faces a camera sees, and free
  of a SciPy dependency). Like ByteTrack, weak detections may continue a track but do not start
  one. Between detector runs the tracker coasts on its predictions, so the detector need not run
  on every frame.
* `LabelSmoother` keeps, per track, an exponential moving average of the class probabilities and
  adds hysteresis, so that one odd frame does not flip a label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..faces import Faces
from ..labels import LABELS

# -- Kalman filter ------------------------------------------------------------------------------

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)  # state: cx, cy, w, h and their velocities (per frame)
_H = np.eye(4, 8)
_STD_POS, _STD_VEL = 1.0 / 20, 1.0 / 160  # noise relative to box size (as in SORT/DeepSORT/ByteTrack)


def _xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)])


def _cxcywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    w, h = max(w, 1e-3), max(h, 1e-3)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class KalmanBoxFilter:
    """Constant-velocity Kalman filter on a box's centre and size."""

    def __init__(self, box: np.ndarray):
        z = _xyxy_to_cxcywh(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        s = np.array([z[2], z[3], z[2], z[3]])
        self.cov = np.diag(np.concatenate([2 * _STD_POS * s, 10 * _STD_VEL * s]) ** 2)

    def predict(self) -> np.ndarray:
        s = np.array([self.mean[2], self.mean[3]] * 2)
        q = np.diag(np.concatenate([_STD_POS * s, _STD_VEL * s]) ** 2)
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + q
        return self.box

    def update(self, box: np.ndarray) -> None:
        z = _xyxy_to_cxcywh(box)
        s = np.array([self.mean[2], self.mean[3]] * 2)
        r = np.diag((_STD_POS * s) ** 2)
        pht = self.cov @ _H.T
        gain = pht @ np.linalg.inv(_H @ pht + r)
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.cov = (np.eye(8) - gain @ _H) @ self.cov

    @property
    def box(self) -> np.ndarray:
        return _cxcywh_to_xyxy(self.mean)


# -- tracker ------------------------------------------------------------------------------------


@dataclass
class Track:
    track_id: int
    kf: KalmanBoxFilter
    box: np.ndarray
    det_score: float
    landmarks: np.ndarray | None
    lm_box: np.ndarray  # the box the landmarks belong to
    hits: int = 1
    since_update: int = 0

    def shifted_landmarks(self) -> np.ndarray | None:
        """The last landmarks moved and scaled with the box (for frames without detection)."""
        if self.landmarks is None:
            return None
        old_c, new_c = (self.lm_box[:2] + self.lm_box[2:]) / 2, (self.box[:2] + self.box[2:]) / 2
        old_s = np.maximum(self.lm_box[2:] - self.lm_box[:2], 1e-3)
        new_s = self.box[2:] - self.box[:2]
        return ((self.landmarks - old_c) / old_s * new_s + new_c).astype(np.float32)


def match_greedy(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` in order of decreasing IoU, each row and column used once, IoU >= threshold."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r, used_c = set(), set()
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


class FaceTracker:
    """Assigns stable track ids to faces over the frames of one video.

    Call `update(faces)` with the detector's output on frames where it ran, and `update(None)`
    on frames where it did not: the tracker then reports its predicted boxes.

    Args:
        iou_threshold: least IoU between a predicted track box and a detection to match them.
        max_age: frames a track survives without a matching detection (then its id retires).
        coast: frames a track is still *reported* without a matching detection (predicted box).
            Set it to at least ``detect_every - 1`` when the detector skips frames.
        new_track_score: detections below this score only continue tracks, never start one.
        centre_distance: a track and a detection left over after IoU matching still match when
            their centres are closer than this fraction of the track's box side (0: off).
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 30, coast: int = 0, new_track_score: float = 0.0,
                 centre_distance: float = 0.5):
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        if max_age < 0 or coast < 0:
            raise ValueError(f"max_age and coast must be >= 0, got {max_age}, {coast}")
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.coast = int(coast)
        self.new_track_score = float(new_track_score)
        self.centre_distance = float(centre_distance)
        self.tracks: list[Track] = []
        self.removed: list[int] = []  #: ids retired by the last update (for per-track state elsewhere)
        self._next_id = 1

    @property
    def tracks_started(self) -> int:
        return self._next_id - 1

    def update(self, faces: Faces | None, image_size: tuple[int, int] | None = None) -> Faces:
        """Advance one frame; ``faces`` are this frame's detections or ``None`` (no detector run).

        Returns the tracked faces of this frame with ``track_id`` set (matched tracks use the
        detected box; coasting tracks their predicted box).
        """
        for t in self.tracks:
            t.box = t.kf.predict()
            t.since_update += 1
        if faces is not None:
            image_size = image_size or faces.image_size
            self._associate(faces)
        self.removed = [t.track_id for t in self.tracks if t.since_update > self.max_age]
        self.tracks = [t for t in self.tracks if t.since_update <= self.max_age]
        shown = [t for t in self.tracks if t.since_update <= self.coast]
        if image_size is not None and shown:  # a coasting box must not leave the image
            for t in shown:
                t.box = ops.clip_boxes(t.box[None], *image_size)[0]
        has_lm = any(t.landmarks is not None for t in shown) and all(t.landmarks is not None for t in shown)
        if not shown:
            return Faces.empty(image_size=image_size, track_id=np.zeros(0, np.int64))
        return Faces(
            xyxy=np.stack([t.box for t in shown]),
            det_score=np.array([t.det_score for t in shown], np.float32),
            landmarks=np.stack([t.shifted_landmarks() for t in shown]) if has_lm else None,
            track_id=np.array([t.track_id for t in shown], np.int64),
            image_size=image_size,
        )

    def _associate(self, faces: Faces) -> None:
        boxes = faces.xyxy
        iou = ops.box_iou(np.stack([t.box for t in self.tracks]) if self.tracks else np.zeros((0, 4)), boxes)
        pairs = match_greedy(iou, self.iou_threshold)
        # second chance for what is left: a detection whose centre lies close to a track's predicted
        # centre (a box that suddenly changed size, e.g. a face half out of the picture)
        rows = [r for r in range(len(self.tracks)) if r not in {r for r, _ in pairs}]
        cols = [c for c in range(len(boxes)) if c not in {c for _, c in pairs}]
        if rows and cols and self.centre_distance > 0:
            tb = np.stack([self.tracks[r].box for r in rows])
            db = boxes[cols]
            dist = np.linalg.norm(((tb[:, None, :2] + tb[:, None, 2:]) - (db[None, :, :2] + db[None, :, 2:])) / 2, axis=2)
            side = np.maximum(tb[:, 2] - tb[:, 0], tb[:, 3] - tb[:, 1])[:, None]
            closeness = 1 - dist / (self.centre_distance * np.maximum(side, 1e-3))
            pairs += [(rows[r], cols[c]) for r, c in match_greedy(closeness, 1e-6)]
        matched = {c for _, c in pairs}
        for r, c in pairs:
            t = self.tracks[r]
            t.kf.update(boxes[c])
            t.box = boxes[c].copy()
            t.det_score = float(faces.det_score[c])
            if faces.landmarks is not None:
                t.landmarks, t.lm_box = faces.landmarks[c].copy(), boxes[c].copy()
            t.hits += 1
            t.since_update = 0
        for c in range(len(faces)):
            if c in matched or faces.det_score[c] < self.new_track_score:
                continue
            lms = None if faces.landmarks is None else faces.landmarks[c].copy()
            self.tracks.append(Track(self._next_id, KalmanBoxFilter(boxes[c]), boxes[c].copy(),
                                     float(faces.det_score[c]), lms, boxes[c].copy()))
            self._next_id += 1

    def reset(self) -> None:
        self.tracks, self.removed, self._next_id = [], [], 1


# -- label smoothing ----------------------------------------------------------------------------


@dataclass
class _LabelState:
    ema: np.ndarray
    held: int
    updates: int = 1
    raw: np.ndarray = field(default_factory=lambda: np.zeros(len(LABELS), np.float32))


class LabelSmoother:
    """Per-track exponential moving average of class probabilities, with hysteresis.

    Each new classification ``p`` updates ``ema = alpha * p + (1 - alpha) * ema``. The label a
    track shows changes only when another class's average beats the current label's by more
    than ``hysteresis``. The reported probabilities are the average with the current label's
    entry raised by ``hysteresis`` and renormalised, so that the reported label is always their
    argmax and a reported confidence never contradicts the label.

    ``alpha=1, hysteresis=0`` turns smoothing off (the latest classification is reported).
    """

    def __init__(self, alpha: float = 0.3, hysteresis: float = 0.2):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis must be in [0, 1), got {hysteresis}")
        self.alpha = float(alpha)
        self.hysteresis = float(hysteresis)
        self.states: dict[int, _LabelState] = {}

    def update(self, track_ids: np.ndarray, probs: np.ndarray) -> None:
        """Fold new classifier probabilities ``(N, C)`` into the tracks ``track_ids`` ``(N,)``."""
        for tid, p in zip(np.asarray(track_ids).tolist(), np.asarray(probs, np.float32)):
            state = self.states.get(tid)
            if state is None:
                self.states[tid] = _LabelState(ema=p.copy(), held=int(p.argmax()), raw=p.copy())
                continue
            state.ema = self.alpha * p + (1 - self.alpha) * state.ema
            state.raw = p.copy()
            state.updates += 1
            best = int(state.ema.argmax())
            if best != state.held and state.ema[best] - state.ema[state.held] > self.hysteresis:
                state.held = best

    def probs(self, track_ids: np.ndarray, n_classes: int = len(LABELS)) -> np.ndarray:
        """Reported probabilities ``(N, C)``; rows of tracks never classified are zero."""
        out = np.zeros((len(track_ids), n_classes), np.float32)
        for i, tid in enumerate(np.asarray(track_ids).tolist()):
            state = self.states.get(tid)
            if state is None:
                continue
            p = state.ema.copy()
            p[state.held] += self.hysteresis
            out[i] = p / p.sum()
        return out

    def has(self, track_id: int) -> bool:
        return int(track_id) in self.states

    def updates(self, track_id: int) -> int:
        state = self.states.get(int(track_id))
        return 0 if state is None else state.updates

    def forget(self, track_ids) -> None:
        for tid in track_ids:
            self.states.pop(int(tid), None)
