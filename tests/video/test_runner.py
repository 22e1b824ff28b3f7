import io
import json
import threading
import time

import pytest

import maskwatch
from maskwatch.faces import Faces
from maskwatch.video import TrackingConfig, VideoAnalyzer, VideoSource, WatchRunner, watch
from maskwatch.video.runner import VideoFileWriter, VideoWriteError

from .conftest import FakeCapture, count_frames, moving_frames


@pytest.fixture(scope="module")
def pipe(shared_models):
    return maskwatch.load("yunet", scale=1.0)  # the video default detector


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_frame_in_jsonl_and_video_playable(pipe, face_video, tmp_path):
    out, jl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    with VideoSource(str(face_video)) as src:
        result = watch(src, VideoAnalyzer(pipe), output=out, jsonl=jl)
    records = read_jsonl(jl)
    assert [r["frame"] for r in records] == list(range(40))
    assert records[5]["time"] == pytest.approx(5 / 15, abs=1e-3)
    assert result.frames_processed == result.frames_written == 40 and result.frames_dropped == 0
    assert count_frames(out) == 40
    faces = [f for r in records for f in r["faces"]]
    assert len(faces) >= 38  # the one face, in (nearly) every frame
    assert {"box", "det_score", "label", "confidence", "probs", "landmarks", "track_id"} <= set(faces[0])
    assert {f["track_id"] for f in faces} == {1}  # one stable track
    assert result.compliance["unique_tracks"] == 1


@pytest.mark.parametrize("config", [TrackingConfig(detect_every=1, classify_every=1), TrackingConfig(detect_every=3)])
def test_track_id_stable_with_and_without_skipping(pipe, face_video, config):
    seen = []
    with VideoSource(str(face_video)) as src:
        watch(src, VideoAnalyzer(pipe, config), on_result=lambda fr, faces: seen.append(faces.track_id.tolist()))
    assert len(seen) == 40
    assert {t for ids in seen for t in ids} == {1}
    assert sum(len(ids) for ids in seen) >= 38


def test_pipelined_and_sequential_give_the_same_results(pipe, face_video, tmp_path):
    outs = []
    for pipelined in (True, False):
        jl = tmp_path / f"{pipelined}.jsonl"
        with VideoSource(str(face_video)) as src:
            WatchRunner(src, VideoAnalyzer(pipe, TrackingConfig(detect_every=2)), jsonl=jl, pipelined=pipelined).run()
        outs.append(jl.read_text())
    assert outs[0] == outs[1] and outs[0].count("\n") == 40


def test_classifier_skips_frames_when_tracking(pipe, face_video):
    analyzer = VideoAnalyzer(pipe, TrackingConfig(detect_every=2, classify_every=5))
    with VideoSource(str(face_video)) as src:
        watch(src, analyzer)
    assert analyzer.detector_runs == 20
    assert 5 <= analyzer.faces_classified < 20


def test_no_track_mode_detects_every_frame(pipe, face_video, tmp_path):
    analyzer = VideoAnalyzer(pipe, TrackingConfig(track=False))
    with VideoSource(str(face_video)) as src:
        watch(src, analyzer, jsonl=tmp_path / "o.jsonl")
    assert analyzer.detector_runs == 40
    assert all("track_id" not in f for r in read_jsonl(tmp_path / "o.jsonl") for f in r["faces"])


def test_interrupt_finishes_outputs(pipe, face_video, tmp_path):
    out, jl = tmp_path / "out.mp4", tmp_path / "out.jsonl"

    def ctrl_c(frame, faces):
        if frame.index == 12:
            raise KeyboardInterrupt

    with VideoSource(str(face_video)) as src:
        result = watch(src, VideoAnalyzer(pipe), output=out, jsonl=jl, on_result=ctrl_c)
    assert result.interrupted
    records = read_jsonl(jl)  # every line complete JSON
    assert [r["frame"] for r in records] == list(range(12))
    assert count_frames(out) == 12  # a playable file with every written frame



def test_ctrl_c_stops_the_run_and_the_handler_is_restored(pipe, face_video, tmp_path):
    """A real SIGINT during a run: graceful stop, every processed frame written, handler put back."""
    import os
    import signal

    out, jl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    before = signal.getsignal(signal.SIGINT)

    def ctrl_c(frame, faces):
        if frame.index == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with VideoSource(str(face_video)) as src:
        result = watch(src, VideoAnalyzer(pipe), output=out, jsonl=jl, on_result=ctrl_c)
    assert result.interrupted
    frames = [r["frame"] for r in read_jsonl(jl)]
    assert frames == list(range(len(frames))) and 6 <= len(frames) < 40
    assert count_frames(out) == result.frames_written == len(frames)
    assert signal.getsignal(signal.SIGINT) is before

def test_stop_from_another_thread(pipe, face_video):
    with VideoSource(str(face_video)) as src:
        runner = WatchRunner(src, VideoAnalyzer(pipe), on_result=lambda fr, f: fr.index == 5 and runner.stop())
        result = runner.run()
    assert 6 <= result.frames_processed < 40 and not result.interrupted


class SlowAnalyzer:
    """Stands in for a slow model: 20 ms per frame."""

    detector_runs = faces_classified = 0

    def process(self, image, source=None):
        time.sleep(0.02)
        return Faces.empty(image_size=image.shape[1::-1])

    def label_updates(self, track_id):
        return 0


class PacedCapture(FakeCapture):
    """A live camera: a new frame every 2 ms."""

    def read(self):
        time.sleep(0.002)
        return super().read()


def test_live_source_drops_frames_it_cannot_process(astronaut):
    frames = moving_frames(astronaut, 8) * 25  # 200 frames
    src = VideoSource(0, opener=lambda *a: PacedCapture(frames), reconnect_attempts=0)
    result = watch(src, SlowAnalyzer(), queue_size=2)
    assert result.frames_read == 200
    assert result.frames_dropped > 100  # camera 10x faster than inference
    assert result.frames_processed + result.frames_dropped == result.frames_read  # bounded, nothing lost silently


def test_file_source_never_drops(astronaut, tmp_path):
    from .conftest import write_video

    path = write_video(tmp_path / "v.mp4", moving_frames(astronaut, 30))
    with VideoSource(str(path)) as src:
        result = watch(src, SlowAnalyzer(), queue_size=1)
    assert result.frames_processed == 30 and result.frames_dropped == 0


class SlowStream(io.StringIO):
    """A JSON-lines sink slower than inference (a busy disk or pipe): 150 ms a line."""

    def write(self, s):
        time.sleep(0.15)
        return super().write(s)


class FastAnalyzer(SlowAnalyzer):
    def process(self, image, source=None):
        return Faces.empty(image_size=image.shape[1::-1])


@pytest.mark.parametrize("stop_at", [None, 3])
def test_slow_writer_loses_no_processed_frame(astronaut, tmp_path, stop_at):
    """Frames already processed are written when the run ends or is interrupted, however slow the sink."""
    from .conftest import write_video

    def ctrl_c(frame, faces):
        if frame.index == stop_at:
            raise KeyboardInterrupt

    path = write_video(tmp_path / "v.mp4", moving_frames(astronaut, 8))
    buf = SlowStream()
    with VideoSource(str(path)) as src:
        result = watch(src, FastAnalyzer(), jsonl=buf, queue_size=2, on_result=ctrl_c)
    frames = [json.loads(line)["frame"] for line in buf.getvalue().splitlines()]
    assert frames == list(range(8 if stop_at is None else stop_at))
    assert result.frames_written == len(frames)
    assert result.interrupted == (stop_at is not None)


def test_jsonl_to_a_stream_and_max_frames(pipe, face_video):
    buf = io.StringIO()
    with VideoSource(str(face_video)) as src:
        result = watch(src, VideoAnalyzer(pipe), jsonl=buf, max_frames=7)
    assert result.frames_processed == 7 and len(buf.getvalue().splitlines()) == 7


def test_video_writer_rejects_unknown_suffix(tmp_path):
    with pytest.raises(VideoWriteError, match="unsupported video type"):
        VideoFileWriter(tmp_path / "out.gif", 25)


def test_alerts_fire_once_per_track_and_do_not_block(pipe, face_video):
    from maskwatch.video import AlertHook

    gate = threading.Event()
    got = []

    def slow_send(event):  # a hanging webhook must not stall the loop
        gate.wait(5)
        got.append(event)

    def last_frame(frame, faces):
        if frame.index == 39:
            done.append(time.perf_counter())
            gate.set()  # release the hanging sender only once the loop got through every frame

    done = []
    alerts = AlertHook(send=slow_send, confidence=0.5, min_updates=1)
    t0 = time.perf_counter()
    with VideoSource(str(face_video)) as src:
        result = watch(src, VideoAnalyzer(pipe), alerts=alerts, on_result=last_frame)
    assert done and done[0] - t0 < 4
    label = result.compliance["tracks_per_label"]
    if label["without_mask"] or label["mask_worn_incorrectly"]:
        assert result.alerts_sent == 1 and len(got) == 1 and got[0]["track_id"] == 1
    else:
        assert result.alerts_sent == 0
