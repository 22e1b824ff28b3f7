"""Uploaded photos, uploaded videos and live camera frames -> annotated media + results, for the web
app (no Streamlit here).

Photos are decoded from memory and go through `Pipeline.detect`, as in ``maskwatch detect``.
Videos and the live camera go through what ``maskwatch watch`` runs: `maskwatch.video.VideoSource`,
`VideoAnalyzer` (tracker + label smoother), `WatchRunner` and its `VideoFileWriter` (H.264 in MP4
through PyAV), `ComplianceStats`; so a video's counts are people (tracks), its labels are
smoothed, and its JSON lines are those of ``watch --jsonl``. A video has to be a file for OpenCV:
it is written into a `tempfile.TemporaryDirectory` private to the call (random name, mode 0700),
as is the annotated video, and the folder is removed before the call returns.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..annotate import BlurAnnotator, BoxAnnotator, annotate
from ..errors import ImageReadError
from ..faces import Faces
from ..imageio import decode_image, encode_image
from ..labels import LABELS
from .uploads import check_image_bytes, sniff

#: At most this many frames of an uploaded video are processed (20 s at 15 fps, 12 s at 25 fps).
DEFAULT_MAX_FRAMES = 300


class SharedPipeline:
    """A pipeline shared by the browser sessions, which are threads: one detector call at a time
    (OpenCV's face detectors must not run in two threads at once), the classifier (ONNX Runtime,
    thread-safe) unlocked, so a video's detector and classifier still overlap as in ``watch``.

    Offers the stages `VideoAnalyzer` and the photo path use: `find_faces`, `classify`, `detect`.
    """

    def __init__(self, pipe):
        self.pipe = pipe
        self.max_pixels = pipe.max_pixels
        self._detector_lock = threading.Lock()

    @property
    def classifies(self) -> bool:
        return self.pipe.classifies

    def find_faces(self, image: np.ndarray) -> Faces:
        with self._detector_lock:
            return self.pipe.find_faces(image)

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        return self.pipe.classify(image, faces)

    def detect(self, image: np.ndarray, source: str | None = None) -> Faces:
        with self._detector_lock:
            return self.pipe.detect(image, source=source)

    def describe(self) -> dict[str, Any]:
        return self.pipe.describe()


def result_key(data: bytes, settings: dict[str, Any]) -> str:
    """A key for the result of processing ``data`` with ``settings``: the SHA-256 of both."""
    digest = hashlib.sha256(data)
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


@dataclass
class ImageResult:
    name: str
    image: np.ndarray
    annotated: np.ndarray
    faces: Faces

    @property
    def record(self) -> dict[str, Any]:
        return self.faces.to_dict()

    def jpeg(self, quality: int = 90) -> bytes:
        return encode_image(self.annotated, ".jpg", quality)


@dataclass
class VideoResult:
    """One uploaded video after ``watch``'s pipeline: the annotated video and what ``watch`` reports."""

    name: str
    video: bytes  #: annotated, as ``watch -o clip.mp4`` writes it (H.264 in fragmented MP4 with PyAV)
    codec: str  #: ``"h264"``, or ``"mpeg4"`` without PyAV (`VideoFileWriter.codec`)
    fps: float  #: frame rate of the upload
    frames: int  #: frames processed
    total_frames: int  #: frames in the upload as its container declares them (0: unknown)
    jsonl: str  #: one JSON line per processed frame, those of ``watch --jsonl``
    summary: dict[str, Any]  #: `ComplianceStats.summary`: unique tracks per label, faces seen, ...
    per_second: list[dict[str, int]] = field(default_factory=list)  #: `ComplianceStats.per_second`
    elapsed: float = 0.0  #: seconds of processing (decoding, inference, encoding), models loaded
    processing_fps: float = 0.0  #: frames processed per second of ``elapsed``

    @property
    def truncated(self) -> bool:
        return self.total_frames > self.frames

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.jsonl.splitlines()]

    @property
    def people(self) -> dict[str, int]:
        """Unique tracked people per label (each track counted under the label it showed most)."""
        return dict(self.summary.get("tracks_per_label", dict.fromkeys(LABELS, 0)))


class BlurredBoxAnnotator:
    """Blurs the faces, then draws the boxes and labels over them (the app's privacy option)."""

    def __init__(self):
        self._blur, self._boxes = BlurAnnotator(), BoxAnnotator()

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        return self._boxes.annotate(self._blur.annotate(image, faces), faces)


def faces_table(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per face for a table: label, confidence and size first, detector score, box last."""
    rows = []
    for face in record["faces"]:
        x1, y1, x2, y2 = face["box"]
        rows.append({"label": face.get("label", "face"), "confidence": face.get("confidence"),
                     "width": round(x2 - x1), "height": round(y2 - y1), "det_score": face["det_score"],
                     "x1": x1, "y1": y1, "x2": x2, "y2": y2})
    return rows


def label_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Faces per label over ``records`` (every label present, zeros included)."""
    counts = dict.fromkeys(LABELS, 0)
    for record in records:
        for face in record["faces"]:
            label = face.get("label", "face")
            counts[label] = counts.get(label, 0) + 1
    return counts


def process_image(pipe, data: bytes, name: str, blur: bool = False) -> ImageResult:
    """Decode ``data`` (an image; the type is sniffed) and run ``pipe`` on it."""
    check_image_bytes(data, name, pipe.max_pixels)
    image = decode_image(data, name=name, max_pixels=pipe.max_pixels)
    faces = pipe.detect(image, source=name)
    return ImageResult(name, image, annotate(image, faces, blur=blur), faces)


def process_video(pipe, data: bytes, name: str, blur: bool = False, max_frames: int = DEFAULT_MAX_FRAMES,
                  config=None, progress: Callable[[int, int], None] | None = None) -> VideoResult:
    """Run ``watch``'s pipeline over an uploaded video (at most ``max_frames`` frames).

    Args:
        pipe: the pipeline (`maskwatch.video.video_pipeline`, or a `SharedPipeline` around it).
        data: the upload's bytes; ``name`` only labels the results.
        blur: blur the faces in the annotated video.
        config: a `maskwatch.video.TrackingConfig` (default: ``watch``'s).
        progress: ``progress(frames_done, frames_expected)``, called in the caller's thread.
    Raises:
        ImageReadError: ``data`` is not a video OpenCV can decode.
    """
    from ..video import VideoAnalyzer, VideoSource, VideoSourceError, WatchRunner
    from ..video.stats import ComplianceStats

    suffix = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "avi": ".avi"}.get(sniff(data) or "", ".bin")
    with tempfile.TemporaryDirectory(prefix="maskwatch-") as tmp:
        src_path, out_path = Path(tmp) / f"upload{suffix}", Path(tmp) / "annotated.mp4"
        src_path.write_bytes(data)
        try:
            source = VideoSource(str(src_path), live=False)
        except VideoSourceError as exc:
            raise ImageReadError(f"{name}: not a readable video") from exc
        with source:
            total = source.frame_count or 0
            todo = min(total, max_frames) if total else max_frames
            lines, stats = io.StringIO(), ComplianceStats()
            on_result = None
            if progress is not None:
                def on_result(frame, faces) -> None:
                    progress(frame.index + 1, todo)
            runner = WatchRunner(source, VideoAnalyzer(pipe, config), output=out_path, jsonl=lines, stats=stats,
                                 max_frames=max_frames, annotator=BlurredBoxAnnotator() if blur else None,
                                 on_result=on_result, handle_signals=False)
            result = runner.run()
            fps = source.fps
        if not result.frames_written:
            raise ImageReadError(f"{name}: the video has no readable frames")
        video, codec = out_path.read_bytes(), video_codec(out_path)
    return VideoResult(name, video, codec, fps or 0.0, result.frames_processed, max(total, result.frames_processed),
                       lines.getvalue(), result.compliance, stats.per_second(), result.elapsed, result.fps)


def video_codec(path: str | Path) -> str:
    """The codec of a video file's first video stream, as FFmpeg names it (``"h264"``, ``"vp9"``, ...)."""
    try:
        import av
    except ImportError:  # then VideoFileWriter wrote MPEG-4 Part 2 through OpenCV
        return "mpeg4"
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


def faces_per_label(faces: Faces) -> dict[str, int]:
    """Faces per label in one frame; a face not (yet) classified counts as ``face``."""
    counts = dict.fromkeys(LABELS, 0)
    labels = faces.label
    for i in range(len(faces)):
        label = labels[i] if labels is not None and faces.probs[i].max() > 0 else "face"
        counts[label] = counts.get(label, 0) + 1
    return counts


class LiveView:
    """One browser's live camera: the frames streamlit-webrtc hands over (in its own thread) go
    through ``watch``'s tracker and smoother, come back annotated, and are counted for the page.

    Args:
        pipe: the pipeline (`maskwatch.video.video_pipeline`, or a `SharedPipeline` around it).
        config: a `maskwatch.video.TrackingConfig` (default: ``watch``'s).
        blur: blur the faces in the frames sent back.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, pipe, config=None, blur: bool = False, clock: Callable[[], float] = time.monotonic):
        from ..video import VideoAnalyzer
        from ..video.stats import ComplianceStats

        self.analyzer = VideoAnalyzer(pipe, config)
        self.stats = ComplianceStats()
        self.annotator = BlurredBoxAnnotator() if blur else BoxAnnotator()
        self._clock = clock
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._last = 0.0
        self.frames = 0  #: frames processed
        self._in_view: dict[str, int] = {}

    def process(self, image: np.ndarray) -> np.ndarray:
        """The annotated frame for an RGB uint8 camera frame; counts it."""
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        faces = self.analyzer.process(image)
        in_view = faces_per_label(faces)
        with self._lock:
            self.stats.update(now - self._t0, faces)
            self.frames += 1
            self._last = now
            self._in_view = in_view
        return self.annotator.annotate(image, faces)

    def counts(self) -> dict[str, Any]:
        """``frames``, ``fps`` (frames processed per second so far), ``in_view`` (faces per label in the
        last frame) and ``people`` (unique tracks per label so far)."""
        with self._lock:
            summary = self.stats.summary()
            seconds = self._last - self._t0 if self._t0 is not None else 0.0
            return {"frames": self.frames, "fps": (self.frames - 1) / seconds if seconds > 0 else 0.0,
                    "in_view": dict(self._in_view) or dict.fromkeys(LABELS, 0),
                    "people": summary["tracks_per_label"], "unique_tracks": summary["unique_tracks"]}
