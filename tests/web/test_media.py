"""`maskwatch.web.media`: photos, uploaded videos (through ``watch``'s pipeline) and live frames."""

from __future__ import annotations

import glob
import json
import tempfile
import threading
import time

import numpy as np
import pytest
from clips import CLIP_FRAMES, THREE_WAYS_PEOPLE, panning_frames

from maskwatch.errors import ImageReadError
from maskwatch.faces import Faces
from maskwatch.imageio import encode_image
from maskwatch.labels import LABELS
from maskwatch.pipeline import load
from maskwatch.video import TrackingConfig, video_pipeline
from maskwatch.web.media import (
    LiveView,
    SharedPipeline,
    faces_per_label,
    faces_table,
    label_counts,
    process_image,
    process_video,
    result_key,
)
from maskwatch.web.uploads import UnsupportedMediaError, sniff


@pytest.fixture(scope="module")
def pipe(shared_models):
    return load("yunet")


@pytest.fixture(scope="module")
def vpipe():
    return video_pipeline()  # the shipped single-pass default: no download, no ../shared


@pytest.fixture(scope="module")
def clip_bytes(three_ways_clip) -> bytes:
    return three_ways_clip.read_bytes()


def test_process_image(pipe, astronaut):
    result = process_image(pipe, encode_image(astronaut), "a.jpg")
    assert result.annotated.shape == astronaut.shape and not np.array_equal(result.annotated, astronaut)
    rows = faces_table(result.record)
    assert len(rows) == 1 and rows[0]["label"] in LABELS
    assert sum(label_counts([result.record]).values()) == 1
    assert sniff(result.jpeg()) == "jpeg"


def test_faces_table_label_confidence_size_first_box_last():
    record = {"faces": [{"box": [10.0, 20.0, 50.5, 80.0], "det_score": 0.9, "label": "with_mask", "confidence": 0.8}]}
    (row,) = faces_table(record)
    assert list(row) == ["label", "confidence", "width", "height", "det_score", "x1", "y1", "x2", "y2"]
    assert (row["width"], row["height"]) == (40, 60)


@pytest.mark.parametrize("data, error", [
    (b"plain text", UnsupportedMediaError),
    (b"\x00\x00\x00\x18ftypmp42" + b"0" * 64, UnsupportedMediaError),
    (b"\xff\xd8\xff" + b"\x00" * 500 + b"\xff\xd9", ImageReadError),
])
def test_process_image_rejects(pipe, data, error):
    with pytest.raises(error):
        process_image(pipe, data, "x.jpg")


def test_label_counts_empty_and_unclassified():
    assert label_counts([]) == dict.fromkeys(LABELS, 0)
    counts = label_counts([{"faces": [{"box": [0, 0, 1, 1], "det_score": 0.9}]}])
    assert counts["face"] == 1


def test_result_key_changes_with_data_and_settings():
    key = result_key(b"abc", {"detector": "rfb", "blur": False})
    assert key == result_key(b"abc", {"blur": False, "detector": "rfb"})  # order does not matter
    assert key != result_key(b"abd", {"detector": "rfb", "blur": False})
    assert key != result_key(b"abc", {"detector": "rfb", "blur": True})


def test_process_video_counts_tracked_people_not_face_frames(vpipe, clip_bytes):
    before = set(glob.glob(f"{tempfile.gettempdir()}/maskwatch-*"))
    result = process_video(vpipe, clip_bytes, "three_ways.mp4")
    assert result.frames == CLIP_FRAMES and not result.truncated
    assert result.people == THREE_WAYS_PEOPLE  # three people, one per label ...
    assert result.summary["unique_tracks"] == 3
    assert result.summary["faces_seen"] == 3 * CLIP_FRAMES  # ... seen in every frame
    records = result.records
    assert [r["frame"] for r in records] == list(range(CLIP_FRAMES))
    assert len({f["track_id"] for r in records for f in r["faces"]}) == 3
    # steady labels: each track keeps one label from its first labelled frame on
    labels = {}
    for r in records:
        for f in r["faces"]:
            labels.setdefault(f["track_id"], set()).add(f.get("label"))
    assert all(len(v) == 1 for v in labels.values()), labels
    assert [row["faces"] for row in result.per_second] == [3, 3]  # 2 s of video, 3 people each second
    assert sniff(result.video) == "mp4"
    assert result.elapsed > 0 and result.processing_fps > 0
    assert set(glob.glob(f"{tempfile.gettempdir()}/maskwatch-*")) == before


def test_process_video_writes_h264_like_watch(vpipe, clip_bytes, tmp_path):
    av = pytest.importorskip("av", reason="the video extra (PyAV) writes H.264")
    result = process_video(vpipe, clip_bytes, "three_ways.mp4")
    assert result.codec == "h264"
    path = tmp_path / "annotated.mp4"
    path.write_bytes(result.video)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == CLIP_FRAMES


def test_process_video_json_lines_are_those_of_watch(vpipe, clip_bytes, three_ways_clip, tmp_path):
    from maskwatch.cli import main

    out = tmp_path / "watch.jsonl"
    assert main(["watch", str(three_ways_clip), "--jsonl", str(out), "--quiet"]) == 0
    web = process_video(vpipe, clip_bytes, "three_ways.mp4").jsonl.splitlines()
    cli = out.read_text().splitlines()
    assert len(web) == len(cli) == CLIP_FRAMES
    for a, b in zip(web, cli, strict=True):
        a, b = json.loads(a), json.loads(b)
        assert (a["frame"], a["time"]) == (b["frame"], b["time"])
        assert [(f["track_id"], f["label"]) for f in a["faces"]] == [(f["track_id"], f["label"]) for f in b["faces"]]
        np.testing.assert_allclose([f["box"] for f in a["faces"]], [f["box"] for f in b["faces"]], atol=0.11)


def test_process_video_frames_capped_with_progress(vpipe, clip_bytes):
    seen = []
    result = process_video(vpipe, clip_bytes, "three_ways.mp4", max_frames=8,
                           progress=lambda done, total: seen.append((done, total)))
    assert result.frames == 8 and result.total_frames == CLIP_FRAMES and result.truncated
    assert seen == [(i, 8) for i in range(1, 9)]
    assert [r["frame"] for r in result.records] == list(range(8))


def test_process_video_without_tracking_counts_no_people(vpipe, clip_bytes):
    result = process_video(vpipe, clip_bytes, "three_ways.mp4", max_frames=6, config=TrackingConfig(track=False))
    assert result.summary["unique_tracks"] == 0 and result.summary["faces_seen"] == 18


def test_process_video_rejects_garbage(vpipe):
    with pytest.raises(ImageReadError):
        process_video(vpipe, b"\x00\x00\x00\x18ftypmp42" + b"0" * 1000, "bad.mp4")


def test_live_view_tracks_counts_and_annotates(vpipe):
    clock = iter(np.arange(0, 100, 0.1))
    view = LiveView(vpipe, clock=lambda: float(next(clock)))
    assert view.counts()["frames"] == 0 and view.counts()["fps"] == 0.0
    frames = panning_frames(12)
    for frame in frames:
        out = view.process(frame)
        assert out.shape == frame.shape and not np.array_equal(out, frame)  # boxes drawn
    c = view.counts()
    assert c["frames"] == 12 and c["fps"] == pytest.approx(10.0)
    assert c["people"] == THREE_WAYS_PEOPLE and c["unique_tracks"] == 3
    assert c["in_view"] == THREE_WAYS_PEOPLE


def test_faces_per_label_unclassified_faces():
    faces = Faces(np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32), np.array([0.9, 0.8], np.float32))
    assert faces_per_label(faces) == dict(dict.fromkeys(LABELS, 0), face=2)


class _SlowPipe:
    """Records how many threads are inside each stage at once."""

    max_pixels = 1000
    classifies = True

    def __init__(self):
        self.inside = {"find_faces": 0, "classify": 0}
        self.most = {"find_faces": 0, "classify": 0}
        self._lock = threading.Lock()

    def _stage(self, name):
        with self._lock:
            self.inside[name] += 1
            self.most[name] = max(self.most[name], self.inside[name])
        time.sleep(0.05)
        with self._lock:
            self.inside[name] -= 1

    def find_faces(self, image):
        self._stage("find_faces")

    def classify(self, image, faces):
        self._stage("classify")

    def detect(self, image, source=None):
        self._stage("find_faces")


def test_shared_pipeline_runs_one_detector_call_at_a_time_but_classifies_concurrently():
    slow = _SlowPipe()
    shared = SharedPipeline(slow)
    threads = [threading.Thread(target=fn, args=args) for _ in range(4)
               for fn, args in ((shared.find_faces, (None,)), (shared.classify, (None, None)),
                                (shared.detect, (None,)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slow.most["find_faces"] == 1 and slow.most["classify"] > 1
