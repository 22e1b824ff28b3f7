"""The threaded video loop: capture -> inference -> writing, with bounded queues.

::

    capture --(frames)--> detection --(frames, detections)--> main: tracking, classification --(results)--> writer
    thread                 thread                                   stats, alerts, live window                  thread

Every arrow is a bounded queue. Decoding, detection, classification and encoding each run in their
own thread (OpenCV and ONNX Runtime release the GIL while they work), so on two or more CPU cores
they overlap: the detector works on frame t+1 while the classifier works on frame t. On a live source a frame that finds the
inference queue full replaces the oldest waiting frame, which is counted as dropped: latency
stays bounded and memory too. On a file nothing is dropped: capture waits for inference.

Stopping early (Ctrl-C, `WatchRunner.stop`, ``q`` in the window) still finishes the outputs: every
frame already processed is written, the video file is closed properly (playable) and every JSON
line is complete.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

import cv2
import numpy as np

from ..annotate import BoxAnnotator
from ..errors import MaskwatchError
from ..faces import Faces
from ..imageio import rgb_to_bgr
from .analyzer import VideoAnalyzer
from .sources import Frame, VideoSource
from .stats import AlertHook, ComplianceStats

log = logging.getLogger(__name__)

#: Frames waiting for inference / results waiting for the writer, at most.
DEFAULT_QUEUE_SIZE = 4
#: Frame rate written for live sources that do not report one.
DEFAULT_LIVE_FPS = 25.0
_END = object()


class VideoWriteError(MaskwatchError, OSError):
    """An output video cannot be created."""


def has_gui() -> bool:
    """Whether this OpenCV build can open windows (``opencv-python-headless`` cannot)."""
    info = cv2.getBuildInformation()
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


#: suffix -> (container format, codec) written through PyAV: H.264 / VP9, which browsers play.
#: MP4 and MOV are fragmented (a fragment per frame, a keyframe a second) and Matroska / WebM
#: clusters close every 0.2 s, each packet flushed, so a killed run leaves a file that plays up to
#: its last frames (measured: 1-4 frames lost at 15 fps, benchmarks/bench_fuzz.py).
_PYAV_CODECS = {".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
                ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9")}
#: suffix -> OpenCV FourCC: Motion JPEG in AVI, and the fallback without PyAV (MPEG-4 Part 2).
_FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v"}
_CODEC_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "23", "tune": "zerolatency"},  # no lookahead: frames leave at once
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0", "lag-in-frames": "0"},
}
_FRAGMENTED = {"movflags": "frag_every_frame+empty_moov+default_base_moof", "flush_packets": "1"}
_CLUSTERED = {"cluster_time_limit": "200", "flush_packets": "1"}
_CONTAINER_OPTIONS = {"mp4": _FRAGMENTED, "mov": _FRAGMENTED, "matroska": _CLUSTERED, "webm": _CLUSTERED}


def _pyav():
    try:
        import av
    except ImportError:
        return None
    return av


class VideoFileWriter:
    """Writes RGB frames to a video file, opened on the first frame (its size sets the video's).

    ``.mp4`` / ``.m4v`` / ``.mov`` / ``.mkv``: H.264, ``.webm``: VP9, both through PyAV (the ``video``
    extra), written so that the part already written stays playable if the process is killed;
    ``.avi``: Motion JPEG through OpenCV. Without PyAV, MP4 falls back to OpenCV's MPEG-4 Part 2
    (``mp4v``, which browsers do not play) with a warning.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        known = set(_PYAV_CODECS) | set(_FOURCC)
        if suffix not in known:
            raise VideoWriteError(f"{self.path}: unsupported video type {suffix or '(none)'}; use one of "
                                  f"{', '.join(sorted(known))}")
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_LIVE_FPS
        self.frames = 0
        self._av = _pyav() if suffix in _PYAV_CODECS else None
        if suffix in _PYAV_CODECS and self._av is None:
            if suffix not in _FOURCC:
                raise VideoWriteError(f"{self.path}: writing {suffix} needs PyAV: pip install \"maskwatch[video]\"")
            log.warning("PyAV is not installed, so %s is written as MPEG-4 Part 2 (mp4v), which browsers do not "
                        "play; install it for H.264: pip install \"maskwatch[video]\"", self.path.name)
        #: the codec written (``"h264"``, ``"vp9"``, ``"mjpeg"`` or ``"mpeg4"``)
        self.codec = ({"libx264": "h264", "libvpx-vp9": "vp9"}[_PYAV_CODECS[suffix][1]] if self._av is not None
                      else {"MJPG": "mjpeg", "mp4v": "mpeg4"}[_FOURCC[suffix]])
        self._writer: cv2.VideoWriter | None = None
        self._container = None
        self._stream = None

    def _open_pyav(self, w: int, h: int) -> None:
        from fractions import Fraction

        av = self._av
        fmt, codec = _PYAV_CODECS[self.path.suffix.lower()]
        try:
            self._container = av.open(str(self.path), mode="w", format=fmt,
                                      container_options=_CONTAINER_OPTIONS.get(fmt, {}))
            rate = Fraction(self.fps).limit_denominator(1001)
            stream = self._container.add_stream(codec, rate=rate, options=_CODEC_OPTIONS.get(codec, {}))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.codec_context.gop_size = max(1, round(self.fps))  # a keyframe a second
            stream.codec_context.time_base = 1 / rate
        except (av.FFmpegError, ValueError, OSError) as exc:
            self._container = None
            raise VideoWriteError(f"{self.path}: cannot create the video file ({exc})") from exc
        self._stream = stream

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._av is not None:
            if h % 2 or w % 2:  # 4:2:0 needs even sides: repeat the last row / column
                image = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
                h, w = image.shape[:2]
            if self._container is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._open_pyav(w, h)
            frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if (w, h) != (self._stream.width, self._stream.height):  # a live source changed size
                frame = frame.reformat(width=self._stream.width, height=self._stream.height)
            frame = frame.reformat(format="yuv420p")
            frame.pts = self.frames
            self._container.mux(self._stream.encode(frame))
            self.frames += 1
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise VideoWriteError(f"{self.path}: cannot create the video file")
        self._writer.write(rgb_to_bgr(image))
        self.frames += 1

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.mux(self._stream.encode(None))  # what the encoder still holds
            finally:
                self._container.close()
                self._container = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def frame_record(frame: Frame, faces: Faces) -> dict[str, Any]:
    """The JSON line of one processed frame: ``{frame, time, faces, counts}`` (``counts``: the frame's
    faces per label and compliant share, `maskwatch.labels.LabelCounts.to_dict`)."""
    return {"frame": frame.index, "time": round(frame.time, 3), "faces": faces.face_dicts(),
            "counts": faces.counts().to_dict()}


@dataclass
class WatchResult:
    """What happened in one run."""

    source: str
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    frames_written: int = 0
    elapsed: float = 0.0
    fps: float = 0.0
    interrupted: bool = False
    source_lost: bool = False
    ended_early: bool = False  # a finite source ended before its declared frame count
    reconnects: int = 0
    detector_runs: int = 0
    faces_classified: int = 0
    alerts_sent: int = 0
    alerts_suppressed: int = 0
    compliance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["elapsed"] = round(self.elapsed, 3)
        out["fps"] = round(self.fps, 2)
        return out


class WatchRunner:
    """Runs a `VideoAnalyzer` over a `VideoSource` and feeds the outputs.

    Args:
        source: the opened video source.
        analyzer: detection, tracking and classification per frame.
        output: path of an annotated video to write (``.mp4``, ``.avi``, ...), or ``None``.
        jsonl: a path or a text stream for one JSON line per processed frame, or ``None``.
        stats: collects per-second label counts (a new `ComplianceStats` if ``None``).
        alerts: an `AlertHook`, or ``None``.
        show: show the annotated frames in a window (needs an OpenCV build with a GUI).
        queue_size: bound of both queues.
        max_frames: stop after this many frames read (``None``: until the source ends).
        on_result: ``on_result(frame, faces)`` called in the inference thread for every result.
        pipelined: run the analyzer's detector in its own thread, one frame ahead (when the
            analyzer has ``detect_stage`` / ``track_stage``).
        handle_signals: when run from the main thread, Ctrl-C (SIGINT) and SIGTERM stop the run
            like `stop` and mark the result ``interrupted``; a second one raises KeyboardInterrupt.
            (A KeyboardInterrupt raised at an arbitrary point of the loop could land inside the
            queues' locking and lose the end of the output.) The previous handlers are restored.
    """

    def __init__(
        self,
        source: VideoSource,
        analyzer: VideoAnalyzer,
        output: str | os.PathLike | None = None,
        jsonl: str | os.PathLike | IO[str] | None = None,
        stats: ComplianceStats | None = None,
        alerts: AlertHook | None = None,
        show: bool = False,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_frames: int | None = None,
        annotator: BoxAnnotator | None = None,
        on_result: Callable[[Frame, Faces], None] | None = None,
        pipelined: bool = True,
        handle_signals: bool = True,
    ):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if show and not has_gui():
            raise MaskwatchError("this OpenCV build has no GUI (opencv-python-headless), so --show cannot open "
                                 "a window; watch the annotated stream in the web app's live view instead, or "
                                 "write it with --output")
        self.source, self.analyzer = source, analyzer
        self.output, self.jsonl, self.show = output, jsonl, show
        self.stats = stats or ComplianceStats()
        self.alerts = alerts
        self.queue_size, self.max_frames = int(queue_size), max_frames
        self.annotator = annotator or BoxAnnotator()
        self.on_result = on_result
        self.handle_signals = handle_signals
        self._stop = threading.Event()
        self._in: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self._out: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self.pipelined = pipelined and hasattr(analyzer, "detect_stage") and hasattr(analyzer, "track_stage")
        # live: the detector works at most one frame ahead, so that results stay fresh
        self._det: queue.Queue = queue.Queue(maxsize=1 if source.live else self.queue_size)
        self._errors: list[BaseException] = []
        self.result = WatchResult(source=source.name)

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe); outputs are completed as usual."""
        self._stop.set()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.result.interrupted:  # the second Ctrl-C: stop finishing the outputs
            raise KeyboardInterrupt
        self.result.interrupted = True
        self._stop.set()
        log.warning("interrupted: finishing the outputs")

    def _catch_signals(self) -> dict[int, Any]:
        """Route SIGINT / SIGTERM to `_on_signal`; returns the handlers to restore."""
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    # -- threads ----------------------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: Any) -> bool:
        """Blocking put that gives up when the run stops; True if the item went in."""
        while True:
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self._stop.is_set():
                    return False

    def _capture(self) -> None:
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and self.result.frames_read >= self.max_frames:
                    break
                frame = self.source.read()
                if frame is None:
                    break
                self.result.frames_read += 1
                if not self.source.live:
                    if not self._put(self._in, frame):
                        break
                    continue
                while True:  # live: never wait; replace the oldest waiting frame
                    try:
                        self._in.put_nowait(frame)
                        break
                    except queue.Full:
                        try:
                            self._in.get_nowait()
                            self.result.frames_dropped += 1
                        except queue.Empty:
                            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._errors.append(exc)
        finally:
            self.result.source_lost = self.source.lost
            self.result.ended_early = bool(getattr(self.source, "ended_early", False))
            self._put_end(self._in)

    def _put_end(self, q: queue.Queue) -> None:
        """Put `_END` after the last item; a slow consumer still gets every item first."""
        while True:
            try:
                q.put(_END, timeout=0.1)
                return
            except queue.Full:
                if not self._stop.is_set():
                    continue
                try:  # the run stopped, so the consumer may take nothing more: make room
                    q.get_nowait()
                except queue.Empty:
                    pass

    def _get(self, q: queue.Queue) -> Any:
        """Blocking get that returns `_END` when the run stops."""
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return _END

    def _detect(self) -> None:
        try:
            while (frame := self._get(self._in)) is not _END:
                if not self._put(self._det, (frame, self.analyzer.detect_stage(frame.image))):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._errors.append(exc)
            self._stop.set()
        finally:
            self._put_end(self._det)

    def _write(self, video: VideoFileWriter | None, jsonl: IO[str] | None) -> None:
        try:
            while True:
                item = self._out.get()
                if item is _END:
                    return
                frame, faces, annotated = item
                if jsonl is not None:  # flushed: a killed run keeps every line of a frame it wrote
                    jsonl.write(json.dumps(frame_record(frame, faces), separators=(",", ":")) + "\n")
                    jsonl.flush()
                if video is not None:
                    video.write(annotated if annotated is not None else self.annotator.annotate(frame.image, faces))
                self.result.frames_written += 1
        except BaseException as exc:  # noqa: BLE001
            self._errors.append(exc)
            self._stop.set()
            while self._out.get() is not _END:  # keep draining so inference never blocks on us
                pass

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> WatchResult:
        """Process the source to its end (or until stopped); returns the `WatchResult`."""
        video = VideoFileWriter(self.output, self.source.fps) if self.output else None
        own_jsonl = isinstance(self.jsonl, (str, os.PathLike))
        if own_jsonl:
            Path(self.jsonl).parent.mkdir(parents=True, exist_ok=True)
            jsonl = open(self.jsonl, "w", encoding="utf-8", buffering=1)  # line-buffered: whole lines on disk
        else:
            jsonl = self.jsonl
        capture = threading.Thread(target=self._capture, name="maskwatch-capture", daemon=True)
        writer = threading.Thread(target=self._write, args=(video, jsonl), name="maskwatch-writer", daemon=True)
        detector = threading.Thread(target=self._detect, name="maskwatch-detect", daemon=True)
        previous_handlers = self._catch_signals()
        writer.start()
        start = time.perf_counter()
        capture.start()
        if self.pipelined:
            detector.start()
        try:
            self._loop()
        except KeyboardInterrupt:  # raised by a callback, or signals not handled here
            self.result.interrupted = True
            log.warning("interrupted: finishing the outputs")
        finally:
            self._stop.set()
            self.result.elapsed = time.perf_counter() - start
            self._out.put(_END)  # never _put_end: a processed frame waiting for a slow writer must not be dropped
            writer.join()
            capture.join(timeout=5.0)
            if self.pipelined:
                detector.join(timeout=5.0)
            if video is not None:
                video.close()
            if own_jsonl:
                jsonl.close()
            elif jsonl is not None:
                jsonl.flush()
            if self.alerts is not None:
                self.alerts.close()
            if self.show:
                cv2.destroyAllWindows()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        self._finish()
        if self._errors:
            raise self._errors[0]
        return self.result

    def _loop(self) -> None:
        analyzer, alerts = self.analyzer, self.alerts
        need_image = self.show or self.output is not None
        while True:
            item = self._get(self._det if self.pipelined else self._in)
            if item is _END:
                return
            name = f"{self.source.name}#{item[0].index if self.pipelined else item.index}"
            if self.pipelined:
                frame, detections = item
                faces = analyzer.track_stage(frame.image, detections, source=name)
            else:
                frame = item
                faces = analyzer.process(frame.image, source=name)
            self.result.frames_processed += 1
            self.stats.update(frame.time, faces)
            if alerts is not None and faces.track_id is not None:
                updates = np.array([analyzer.label_updates(t) for t in faces.track_id.tolist()])
                alerts.check(faces, updates, frame.index, frame.time, self.source.name)
            if self.on_result is not None:
                self.on_result(frame, faces)
            annotated = None
            if self.show:
                annotated = self.annotator.annotate(frame.image, faces)
                cv2.imshow("maskwatch", rgb_to_bgr(annotated))
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    self._stop.set()
            if need_image or self.jsonl is not None:
                self._out.put((frame, faces, annotated))  # the writer takes every item up to _END, even after an error
            if self._stop.is_set():
                return

    def _finish(self) -> None:
        r, a = self.result, self.analyzer
        r.fps = r.frames_processed / r.elapsed if r.elapsed > 0 else 0.0
        r.reconnects = self.source.reconnects
        r.detector_runs, r.faces_classified = a.detector_runs, a.faces_classified
        if self.alerts is not None:
            r.alerts_sent, r.alerts_suppressed = self.alerts.sent, self.alerts.suppressed
        r.compliance = self.stats.summary()


def watch(source: VideoSource, analyzer: VideoAnalyzer, **kwargs: Any) -> WatchResult:
    """Run `WatchRunner(source, analyzer, **kwargs)` and return its result."""
    return WatchRunner(source, analyzer, **kwargs).run()
