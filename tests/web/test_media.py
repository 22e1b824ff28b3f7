"""`maskwatch.web.media`: photo and short-video processing behind the web app."""

from __future__ import annotations

import glob
import tempfile

import cv2
import numpy as np
import pytest

from maskwatch.errors import ImageReadError
from maskwatch.imageio import encode_image
from maskwatch.labels import LABELS
from maskwatch.pipeline import load
from maskwatch.web.media import faces_table, label_counts, process_image, process_video, video_counts_per_frame
from maskwatch.web.uploads import UnsupportedMediaError, sniff


@pytest.fixture(scope="module")
def pipe(shared_models):
    return load("yunet")


@pytest.fixture(scope="module")
def clip(astronaut, tmp_path_factory) -> bytes:
    """A 12-frame 320x320 MP4 of the astronaut drifting right (made here, read back as bytes)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    small = cv2.cvtColor(cv2.resize(astronaut, (320, 320)), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 320))
    for i in range(12):
        writer.write(np.roll(small, 2 * i, axis=1))
    writer.release()
    return path.read_bytes()


def test_process_image(pipe, astronaut):
    result = process_image(pipe, encode_image(astronaut), "a.jpg")
    assert result.annotated.shape == astronaut.shape and not np.array_equal(result.annotated, astronaut)
    rows = faces_table(result.record)
    assert len(rows) == 1 and rows[0]["label"] in LABELS
    assert sum(label_counts([result.record]).values()) == 1
    assert sniff(result.jpeg()) == "jpeg"


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


def test_process_video_frames_capped_and_temp_files_removed(pipe, clip):
    before = set(glob.glob(f"{tempfile.gettempdir()}/maskwatch-*"))
    seen = []
    result = process_video(pipe, clip, "clip.mp4", max_frames=8,
                           progress=lambda done, total: seen.append((done, total)))
    assert result.frames == 8 and result.total_frames == 12 and result.truncated
    assert seen[-1] == (8, 8)
    assert [r["frame"] for r in result.records] == list(range(8))
    assert all(len(r["faces"]) == 1 for r in result.records)
    assert video_counts_per_frame(result.records)[result.records[0]["faces"][0]["label"]][0] == 1
    assert sniff(result.video) == "webm"
    assert set(glob.glob(f"{tempfile.gettempdir()}/maskwatch-*")) == before


def test_process_video_rejects_garbage(pipe):
    with pytest.raises(ImageReadError):
        process_video(pipe, b"\x00\x00\x00\x18ftypmp42" + b"0" * 1000, "bad.mp4")
