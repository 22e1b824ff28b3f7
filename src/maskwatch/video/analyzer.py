"""Per-frame analysis of a video: detection, tracking, classification scheduling and smoothing.

`VideoAnalyzer(pipeline).process(image)` returns the `Faces` of one frame with ``track_id`` set
and smoothed class probabilities. To save work it runs the detector on every
``detect_every``-th frame only (the tracker predicts the boxes in between) and classifies a
tracked face again only every ``classify_every`` frames or as soon as its box has moved or
changed size by more than ``reclassify_iou`` allows. The defaults were chosen by measurement:
see ``benchmarks/bench_watch.py`` and docs/video.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import ops
from ..faces import Faces
from ..imageio import as_rgb_array
from ..labels import LABELS
from .tracking import FaceTracker, LabelSmoother

#: CPU threads for the detector and for the classifier each: they run concurrently in
#: `WatchRunner` (measured in benchmarks/bench_watch.py).
DEFAULT_VIDEO_THREADS = 1


@dataclass
class TrackingConfig:
    """How a video is analysed; every field is a ``maskwatch watch`` flag.

    Attributes:
        track: give faces track ids and smooth labels (off: every frame detected and classified
            on its own, like ``maskwatch detect``).
        detect_every: run the detector on every k-th frame; the tracker predicts in between.
        classify_every: classify a tracked face again after this many frames.
        reclassify_iou: ... or earlier, when the IoU between its box now and its box at the last
            classification falls below this.
        smoothing: weight of a new classification in the per-track moving average (1 = off).
        hysteresis: how much another label's average must beat the current one to switch.
        iou_threshold: least IoU to continue a track with a detection.
        max_age: frames a track survives without detection.
        new_track_score: least detector score to start a track.
    """

    track: bool = True
    detect_every: int = 2
    classify_every: int = 5
    reclassify_iou: float = 0.6
    smoothing: float = 0.2
    hysteresis: float = 0.2
    iou_threshold: float = 0.3
    max_age: int = 30
    new_track_score: float = 0.7

    def __post_init__(self) -> None:
        if self.detect_every < 1 or self.classify_every < 1:
            raise ValueError(f"detect_every and classify_every must be >= 1, got {self.detect_every}, "
                             f"{self.classify_every}")
        if not 0.0 <= self.reclassify_iou <= 1.0:
            raise ValueError(f"reclassify_iou must be in [0, 1], got {self.reclassify_iou}")

    def to_dict(self) -> dict:
        return asdict(self)


class VideoAnalyzer:
    """Detector + tracker + classifier + label smoothing for the frames of one video.

    Args:
        pipeline: a `maskwatch.Pipeline` (its `find_faces` and `classify` stages are used).
        config: a `TrackingConfig` (defaults: measured).
    """

    def __init__(self, pipeline, config: TrackingConfig | None = None):
        self.pipeline = pipeline
        self.config = config or TrackingConfig()
        c = self.config
        self.tracker = FaceTracker(iou_threshold=c.iou_threshold, max_age=max(c.max_age, c.detect_every),
                                   coast=c.detect_every - 1, new_track_score=c.new_track_score)
        self.smoother = LabelSmoother(alpha=c.smoothing, hysteresis=c.hysteresis)
        self.frame = -1
        self._det_frame = -1
        self._last_cls: dict[int, tuple[int, np.ndarray]] = {}  # track -> (frame, box) of last classification
        #: work counters, for benchmarks and the run summary
        self.detector_runs = 0
        self.faces_classified = 0

    def _detect(self, image: np.ndarray) -> Faces:
        self.detector_runs += 1
        return self.pipeline.find_faces(image)

    def detect_stage(self, image: np.ndarray) -> Faces | None:
        """First half of `process`: the detector, on the frames due for it (else ``None``).

        `WatchRunner` calls it in its own thread, one frame ahead of `track_stage`, so that the
        detector and the classifier work on two CPU cores at once. Call the two halves in frame
        order, once per frame each.
        """
        self._det_frame += 1
        if not self.config.track or self._det_frame % self.config.detect_every == 0:
            return self._detect(image)
        return None

    def track_stage(self, image: np.ndarray, detections: Faces | None, source: str | None = None) -> Faces:
        """Second half of `process`: tracking, classification of the faces due, smoothing."""
        h, w = image.shape[:2]
        self.frame += 1
        if not self.config.track:
            faces = detections
            if self.pipeline.classifies:
                faces = self.pipeline.classify(image, faces)
                self.faces_classified += len(faces)
            return faces.with_meta(image_size=(w, h), source=source)

        faces = self.tracker.update(detections, image_size=(w, h))
        self.smoother.forget(self.tracker.removed)
        for tid in self.tracker.removed:
            self._last_cls.pop(tid, None)
        if not self.pipeline.classifies:
            if not self.smoother.states and (detections is None or detections.probs is None):
                return faces.with_meta(source=source)  # a face-only detector: no classes to show
            if detections is not None and detections.probs is not None and len(faces) and len(detections):
                # a one-pass detector labelled the faces: smooth its classes per track like a
                # classifier's; a matched track carries its detection's box, so pairs coincide
                rows, cols = np.nonzero(ops.box_iou(faces.xyxy, detections.xyxy) > 0.999)
                if len(rows):
                    self.smoother.update(faces.track_id[rows], detections.probs[cols])
            return faces.with_probs(self.smoother.probs(faces.track_id), LABELS).with_meta(source=source)

        due = [i for i, tid in enumerate(faces.track_id.tolist()) if self._due(tid, faces.xyxy[i])]
        if due:
            idx = np.asarray(due)
            self.smoother.update(faces.track_id[idx], self.pipeline.classify(image, faces[idx]).probs)
            self.faces_classified += len(idx)
            for i in due:
                self._last_cls[int(faces.track_id[i])] = (self.frame, faces.xyxy[i].copy())
        return faces.with_probs(self.smoother.probs(faces.track_id), LABELS).with_meta(source=source)

    def process(self, image: np.ndarray, source: str | None = None) -> Faces:
        """The faces of the next frame (RGB uint8), with track ids and smoothed probabilities."""
        image = as_rgb_array(image)
        return self.track_stage(image, self.detect_stage(image), source)

    def _due(self, track_id: int, box: np.ndarray) -> bool:
        last = self._last_cls.get(track_id)
        if last is None:
            return True
        frame, last_box = last
        if self.frame - frame >= self.config.classify_every:
            return True
        return float(ops.box_iou(box[None], last_box[None])[0, 0]) < self.config.reclassify_iou

    def label_updates(self, track_id: int) -> int:
        """How many classifications have gone into a track's label."""
        return self.smoother.updates(track_id)


def video_pipeline(detector: str | None = None, classifier: Any = "auto", threads: int = DEFAULT_VIDEO_THREADS,
                   **load_kwargs: Any):
    """The `Pipeline` ``maskwatch watch`` (and the web app's video and live views) runs on frames.

    The ``video`` preset's detector unless ``detector`` names another; ``classifier`` as in
    `maskwatch.load` (``"auto"``: none behind a one-pass detector that labels the masks itself, the
    shipped one behind a face-only detector), with ``threads`` ONNX Runtime threads (0: the
    library's default), since `WatchRunner` runs it beside the detector. ``load_kwargs`` go to
    `maskwatch.load` (``scale``, ``score_threshold``, ``min_face``, ``tile``, ``min_side``, ...).
    """
    from ..classifier import MaskClassifier
    from ..pipeline import load, resolve_classifier
    from ..presets import preset

    classifier, how = resolve_classifier(detector or preset("video").detector, classifier, "video")
    if classifier is not None and not isinstance(classifier, MaskClassifier):
        classifier = MaskClassifier(None if classifier == "default" else classifier, threads=threads or None)
    return load(detector=detector, classifier=classifier, preset="video", **how, **load_kwargs)
