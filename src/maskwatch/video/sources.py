"""Video sources: a webcam index, a video file or a network stream behind one interface.

`open_source("0")` opens webcam 0, `open_source("clip.mp4")` a file, and
`open_source("rtsp://...")` / `open_source("http://...")` a stream (whatever OpenCV's FFmpeg
backend opens). Frames come out as `Frame` objects holding an RGB uint8 image.

Live sources (webcams and streams) are reconnected with a bounded exponential back-off when they
stop delivering frames; so is a video file served over the network that ends before its declared
frame count (reopened at the next frame). A local file that ends early is reported
(`VideoSource.ended_early`, a warning). Nothing here prints: problems are logged or raised as
`VideoSourceError`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..errors import MaskwatchError
from ..imageio import bgr_to_rgb

log = logging.getLogger(__name__)

#: URL schemes handed to OpenCV's FFmpeg backend as network streams.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "mms")

#: Seconds to wait for a network stream to open / for one frame to arrive.
DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 10.0
#: Reconnection of live sources: attempts, first delay, longest delay (seconds).
DEFAULT_RECONNECT_ATTEMPTS = 5
DEFAULT_RECONNECT_DELAY = 0.5
DEFAULT_RECONNECT_MAX_DELAY = 8.0


class VideoSourceError(MaskwatchError, OSError):
    """A video source cannot be opened or read (missing file, unreachable URL, no webcam)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source, its time in seconds and the RGB image."""

    index: int
    time: float
    image: np.ndarray


def source_kind(spec: str | int) -> str:
    """``"webcam"`` for an integer index, ``"stream"`` for a URL, else ``"file"``."""
    if isinstance(spec, int) or re.fullmatch(r"\d+", str(spec).strip()):
        return "webcam"
    scheme = str(spec).split("://", 1)[0].lower() if "://" in str(spec) else ""
    return "stream" if scheme in STREAM_SCHEMES else "file"


def redact(spec: str) -> str:
    """The source name without a password (``rtsp://user:secret@host`` -> ``rtsp://user:***@host``)."""
    return re.sub(r"(://[^:/@]+:)[^@/]+@", r"\1***@", str(spec))


Opener = Callable[[str | int, str, float, float], Any]


def _open_capture(spec: str | int, kind: str, open_timeout: float, read_timeout: float) -> cv2.VideoCapture:
    if kind == "webcam":
        return cv2.VideoCapture(int(spec))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)]
    return cv2.VideoCapture(str(spec), cv2.CAP_FFMPEG, params)


class VideoSource:
    """Frames from a webcam, a file or a network stream, as RGB `Frame` objects.

    >>> with VideoSource("clip.mp4") as src:
    ...     for frame in src:
    ...         faces = pipe.detect(frame.image)

    Args:
        spec: webcam index (``0`` or ``"0"``), path of a video file, or a stream URL.
        reconnect_attempts: how often a live source that stops delivering frames is reopened
            (delays double from ``reconnect_delay`` up to ``reconnect_max_delay``) before it
            counts as lost. Files are never reopened.
        opener: ``opener(spec, kind, open_timeout, read_timeout)`` returning an object with the
            ``cv2.VideoCapture`` methods ``isOpened``, ``read``, ``get`` and ``release``; tests and
            unusual cameras plug in here.
        sleep: the function used to wait between reconnection attempts.
        live: treat the source as live (drop frames that cannot be processed in time, reconnect)
            or not. By default webcams and streams are live, except a URL whose frame count is
            known: that is a video file served over the network, read frame by frame.
    Raises:
        VideoSourceError: the file does not exist or is not a video, the URL or webcam does not
            open.
    """

    def __init__(
        self,
        spec: str | int,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        reconnect_attempts: int = DEFAULT_RECONNECT_ATTEMPTS,
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY,
        opener: Opener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        live: bool | None = None,
    ):
        self.spec = spec
        self.kind = source_kind(spec)
        self.name = redact(str(spec)) if self.kind != "webcam" else f"webcam {int(spec)}"
        self.open_timeout, self.read_timeout = float(open_timeout), float(read_timeout)
        self.reconnect_attempts = max(0, int(reconnect_attempts))
        self.reconnect_delay, self.reconnect_max_delay = float(reconnect_delay), float(reconnect_max_delay)
        self._opener = opener or _open_capture
        self._sleep = sleep
        self.reconnects = 0  #: successful reconnections so far
        self.lost = False  #: a live source stopped and could not be reopened
        self.ended_early = False  #: a finite source ended before its declared frame count
        self._stalls = 0  # reconnections in a row without a new frame
        self._index = 0
        self._t0: float | None = None
        if self.kind == "file":
            path = Path(str(spec))
            if not path.is_file():
                raise VideoSourceError(f"{spec}: no such video file" if not path.exists() else f"{spec}: not a file")
        self._cap = self._open()
        if self._cap is None:
            what = {"file": "not a readable video file", "webcam": "webcam did not open (is one connected?)",
                    "stream": f"stream did not open within {self.open_timeout:g} s"}[self.kind]
            raise VideoSourceError(f"{self.name}: {what}")
        self.fps = self._prop(cv2.CAP_PROP_FPS)
        w, h = int(self._prop(cv2.CAP_PROP_FRAME_WIDTH)), int(self._prop(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size: tuple[int, int] | None = (w, h) if w > 0 and h > 0 else None
        n = int(self._prop(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = n if self.kind != "webcam" and n > 0 else None
        #: live sources drop frames they cannot process in time and are reconnected when they stop
        if live is None:
            live = self.kind == "webcam" or (self.kind == "stream" and not self.frame_count)
        self.live = bool(live)
        self._pending: np.ndarray | None = None
        if self.kind == "file":  # a file OpenCV "opens" but cannot decode is not a video
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                self._cap.release()
                raise VideoSourceError(f"{self.name}: not a readable video file (no frame could be decoded)")
            self._pending = bgr

    def _prop(self, prop: int) -> float:
        try:
            value = float(self._cap.get(prop))
        except Exception:  # noqa: BLE001 - capture backends differ in what they support
            return 0.0
        return value if np.isfinite(value) and value > 0 else 0.0

    def _open(self):
        try:
            cap = self._opener(self.spec, self.kind, self.open_timeout, self.read_timeout)
        except cv2.error as exc:
            log.debug("%s: open failed: %s", self.name, exc)
            return None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None
        return cap

    def _reconnect(self) -> bool:
        """Reopen a live source with exponential back-off; False once every attempt failed."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        delay = self.reconnect_delay
        for attempt in range(1, self.reconnect_attempts + 1):
            log.warning("%s: no frames; reconnecting in %.1f s (attempt %d of %d)", self.name, delay, attempt,
                        self.reconnect_attempts)
            self._sleep(delay)
            self._cap = self._open()
            if self._cap is not None:
                self.reconnects += 1
                log.warning("%s: reconnected", self.name)
                return True
            delay = min(delay * 2, self.reconnect_max_delay)
        log.error("%s: lost after %d reconnection attempts", self.name, self.reconnect_attempts)
        return False

    def _short_of_declared(self) -> bool:
        """Whether a finite source stopped before its declared frame count (beyond a small slack:
        some containers only estimate it)."""
        n = self.frame_count
        return bool(n) and self._index < n - max(2, n // 100)

    def _reopen_at(self, index: int) -> bool:
        """Reconnect a finite network source and position it at frame ``index``."""
        if self._stalls >= max(1, self.reconnect_attempts) or not self._reconnect():
            return False
        self._stalls += 1
        if index and not self._cap.set(cv2.CAP_PROP_POS_FRAMES, index):
            for _ in range(index):  # cannot seek: skip forward
                if not self._cap.grab():
                    break
        return True

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end of a file or when a live source is lost."""
        if self._pending is not None:
            bgr, self._pending = self._pending, None
        else:
            bgr = None
            while self._cap is not None:
                ok, bgr = self._cap.read()
                if ok and bgr is not None:
                    self._stalls = 0
                    break
                bgr = None
                if not self.live:
                    if self._short_of_declared():
                        if self.kind == "stream":
                            log.warning("%s: ended at frame %d of %d", self.name, self._index, self.frame_count)
                            if self._reopen_at(self._index):
                                continue
                            self.lost = True
                        self.ended_early = True
                        log.warning("%s: ended after %d of its %d frames (%s)", self.name, self._index,
                                    self.frame_count, "the stream did not come back" if self.lost else
                                    "the file is truncated or damaged")
                    break
                if not self._reconnect():
                    self.lost = True
                    break
            if bgr is None:
                return None
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        if self.live or not self.fps:
            t = now - self._t0
        else:
            t = self._index / self.fps
        frame = Frame(self._index, t, bgr_to_rgb(bgr) if bgr.ndim == 3 else np.dstack([bgr] * 3))
        self._index += 1
        return frame

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSource({self.name!r}, kind={self.kind}, size={self.size}, fps={self.fps:g})"


def open_source(spec: str | int, **kwargs: Any) -> VideoSource:
    """Open a webcam index, video file or stream URL (see `VideoSource`)."""
    return VideoSource(spec, **kwargs)
