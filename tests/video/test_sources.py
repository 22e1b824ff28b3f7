import cv2
import numpy as np
import pytest

from maskwatch.video.sources import VideoSource, VideoSourceError, redact, source_kind

from .conftest import FakeCapture, MjpegServer, free_port, moving_frames


@pytest.mark.parametrize("spec, kind", [
    ("0", "webcam"), (1, "webcam"), ("clip.mp4", "file"), ("rtsp://cam/stream", "stream"),
    ("http://127.0.0.1:8080/video.mjpg", "stream"), ("HTTPS://x/y.m3u8", "stream"), ("file://x.mp4", "file"),
])
def test_source_kind(spec, kind):
    assert source_kind(spec) == kind


def test_redact_hides_password():
    assert redact("rtsp://admin:s3cret@10.0.0.2/ch1") == "rtsp://admin:***@10.0.0.2/ch1"


def test_file_every_frame_in_order(face_video):
    with VideoSource(str(face_video)) as src:
        assert not src.live and src.size == (320, 240) and src.fps == pytest.approx(15)
        frames = list(src)
    assert [f.index for f in frames] == list(range(40))
    assert frames[1].time == pytest.approx(1 / 15)
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == (240, 320, 3)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.mp4", "no such video file"),
    (lambda p: p, "not a file"),
    (lambda p: (p / "notes.mp4").write_text("not a video") and p / "notes.mp4", "not a readable video"),
])
def test_bad_files_raise_clear_errors(tmp_path, make, message):
    with pytest.raises(VideoSourceError, match=message):
        VideoSource(str(make(tmp_path)))


def test_url_that_never_opens(tmp_path):
    with pytest.raises(VideoSourceError, match="did not open"):
        VideoSource(f"http://127.0.0.1:{free_port()}/stream.mjpg", open_timeout=2)


def test_mjpeg_http_stream_is_read(astronaut):
    frames = moving_frames(astronaut, 12)
    with MjpegServer(frames) as server, VideoSource(server.url, reconnect_attempts=0) as src:
        assert src.live and src.kind == "stream"
        got = list(src)
    assert len(got) >= 10  # FFmpeg may hold back the very last part
    assert got[0].image.shape == (240, 320, 3)
    assert abs(int(got[0].image.mean()) - int(frames[0].mean())) < 8


def test_dropped_stream_reconnects_then_is_lost(astronaut):
    frames = moving_frames(astronaut, 16)
    with MjpegServer(frames, frames_per_connection=8, connections=2) as server:
        with VideoSource(server.url, reconnect_attempts=2, reconnect_delay=0.05) as src:
            got = list(src)
    assert src.reconnects >= 1
    assert len(got) > 8
    assert src.lost


class FakeOpener:
    """Webcam opener: a list of captures handed out one per (re)open; None = device missing."""

    def __init__(self, captures):
        self.captures, self.calls = list(captures), []

    def __call__(self, spec, kind, open_timeout, read_timeout):
        self.calls.append((spec, kind))
        return self.captures.pop(0) if self.captures else None


def test_webcam_through_the_same_abstraction(astronaut):
    frames = moving_frames(astronaut, 6)
    delays = []
    opener = FakeOpener([FakeCapture(frames[:3]), None, FakeCapture(frames[3:])])
    with VideoSource("0", opener=opener, reconnect_attempts=3, reconnect_delay=0.5, sleep=delays.append) as src:
        assert src.live and src.name == "webcam 0" and src.fps == 30
        got = list(src)
    assert len(got) == 6 and [f.index for f in got] == list(range(6))
    assert src.reconnects == 1 and src.lost
    assert opener.calls[0] == ("0", "webcam")
    assert delays[:2] == [0.5, 1.0]  # exponential back-off ...
    assert max(delays) <= 8.0 and len(delays) == 2 + 3  # ... bounded in delay and attempts


def test_webcam_missing():
    with pytest.raises(VideoSourceError, match="webcam did not open"):
        VideoSource(0, opener=FakeOpener([FakeCapture([], opened=False)]))


def test_video_file_over_http_is_read_frame_by_frame(face_video):
    from .conftest import FileServer

    with FileServer(face_video) as server, VideoSource(server.url, reconnect_attempts=0) as src:
        assert src.kind == "stream" and not src.live and src.frame_count == 40  # finite: nothing dropped
        frames = list(src)
    assert [f.index for f in frames] == list(range(40)) and not src.lost


@pytest.mark.parametrize("reconnect", [3, 0])
def test_video_over_http_that_drops_halfway_is_reopened_at_the_next_frame(tmp_path, astronaut, reconnect):
    from .conftest import FileServer, moving_frames, write_video

    path = write_video(tmp_path / "long.mp4", moving_frames(astronaut, 120))
    size = path.stat().st_size
    with FileServer(path, drop_at=size // 2, down_for=2) as server, \
            VideoSource(server.url, reconnect_attempts=reconnect, reconnect_delay=0.01) as src:
        assert src.frame_count == 120 and not src.live
        frames = list(src)
    if reconnect:
        assert [f.index for f in frames] == list(range(120))
        assert src.reconnects == 1 and not src.lost and not src.ended_early
        with VideoSource(str(path)) as local:  # the same frames, not a jump back to a keyframe
            off = [g.index for g, w in zip(frames, local) if np.abs(g.image.astype(int) - w.image).mean() > 2]
        assert len(off) <= 1, off  # the frame the drop cut in half
    else:  # no reconnection allowed: reported, not silent
        assert 20 < len(frames) < 100
        assert src.lost and src.ended_early


def test_truncated_local_file_is_reported(tmp_path, astronaut, caplog):
    from .conftest import moving_frames

    path = tmp_path / "clip.avi"
    h, w = 240, 320
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (w, h))
    for f in moving_frames(astronaut, 60):
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()
    data = path.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING"), VideoSource(str(truncated)) as src:
        frames = list(src)
    assert src.frame_count == 60 and len(frames) < 45
    assert src.ended_early and not src.lost
    assert "ended after" in caplog.text and "truncated" in caplog.text
    with VideoSource(str(path)) as src:
        assert len(list(src)) == 60 and not src.ended_early
