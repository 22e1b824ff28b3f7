"""Test videos built on the fly: the public-domain astronaut photo moved and scaled across frames."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from netutil import free_port  # noqa: F401  (re-exported to the video tests)

W, H = 320, 240


def moving_frames(photo: np.ndarray, n: int, size: tuple[int, int] = (W, H), step: float = 2.0) -> list[np.ndarray]:
    """``n`` RGB frames: the photo's upper half (the face), scaled to ~half the frame height and
    moved right by ``step`` px per frame while slowly growing, on a grey background."""
    w, h = size
    face = photo[:280, 110:340]  # the astronaut's head and shoulders
    frames = []
    for i in range(n):
        s = 0.45 + 0.1 * i / max(n - 1, 1)
        fh = int(h * s * 1.6)
        fw = int(fh * face.shape[1] / face.shape[0])
        patch = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_AREA)
        frame = np.full((h, w, 3), 110, np.uint8)
        x = int(10 + step * i) % max(1, w - fw)
        y = max(0, (h - fh) // 2)
        frame[y:y + fh, x:x + fw] = patch[: h - y, : w - x]
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 15.0) -> Path:
    from clips import write_clip

    return write_clip(path, frames, fps)


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="session")
def face_video(tmp_path_factory, astronaut) -> Path:
    """A 40-frame 320x240 mp4 with one moving face."""
    return write_video(tmp_path_factory.mktemp("video") / "face.mp4", moving_frames(astronaut, 40))


class _LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (a free port), used as a context manager."""

    def _serve(self, handler, name: str) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class MjpegServer(_LoopbackServer):
    """An MJPEG-over-HTTP camera on 127.0.0.1 (multipart/x-mixed-replace), like many IP cameras.

    Each connection gets ``frames_per_connection`` frames and is then closed (a dropped stream);
    after ``connections`` connections the server stops accepting.
    """

    def __init__(self, frames: list[np.ndarray], frames_per_connection: int | None = None, connections: int = 1,
                 fps: float = 50.0):
        import time

        jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
        per = frames_per_connection or len(jpegs)
        server_ref = self
        self.served = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if server_ref.served >= connections:
                    self.send_error(503)
                    return
                start = server_ref.served * per
                server_ref.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for jpg in jpegs[start:start + per]:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(jpg)}\r\n\r\n".encode() + jpg + b"\r\n")
                        time.sleep(1 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self._serve(Handler, "stream.mjpg")



class FakeCapture:
    """Stands in for ``cv2.VideoCapture`` of a webcam: BGR frames, then failures."""

    def __init__(self, frames: list[np.ndarray], fps: float = 30.0, opened: bool = True):
        self.frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
        self.fps, self.opened, self.i = fps, opened, 0

    def isOpened(self):  # noqa: N802
        return self.opened

    def read(self):
        if self.i >= len(self.frames):
            return False, None
        self.i += 1
        return True, self.frames[self.i - 1]

    def get(self, prop):
        h, w = self.frames[0].shape[:2] if self.frames else (0, 0)
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: w, cv2.CAP_PROP_FRAME_HEIGHT: h}.get(prop, 0)

    def release(self):
        self.opened = False




class FileServer(_LoopbackServer):
    """Serves one file over HTTP on 127.0.0.1 with byte ranges (as web servers do; FFmpeg seeks).

    ``drop_at``: the first ``drops`` ranged responses through this byte offset stop there and close the
    connection, and the ``down_for`` requests after it are refused (503): a network that drops
    halfway through a video for longer than FFmpeg's own retry.
    """

    def __init__(self, path: Path, drop_at: int | None = None, drops: int = 1, down_for: int = 0):
        import re

        data = Path(path).read_bytes()
        server_ref = self
        self.drops_left = drops if drop_at is not None else 0
        self.down_left = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if server_ref.down_left:
                    server_ref.down_left -= 1
                    self.send_error(503)
                    return
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                start, end = (int(m[1]), int(m[2]) if m[2] else len(data) - 1) if m else (0, len(data) - 1)
                self.send_response(206 if m else 200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                if m:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                stop = end + 1
                if server_ref.drops_left and 0 < start < drop_at <= end:  # a read through it, after the opening
                    server_ref.drops_left -= 1
                    server_ref.down_left = down_for
                    stop = drop_at
                    self.close_connection = True
                try:
                    self.wfile.write(data[start:stop])
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self._serve(Handler, Path(path).name)

