import json

import pytest

from maskwatch.cli import main

from .conftest import count_frames, free_port


def test_watch_file_writes_every_output(shared_models, face_video, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["watch", str(face_video), "-o", str(out / "a.mp4"), "--jsonl", str(out / "a.jsonl"),
               "--csv", str(out / "a.csv"), "--chart", str(out / "a.png"), "--summary", str(out / "s.json")])
    assert rc == 0
    assert count_frames(out / "a.mp4") == 40
    assert len((out / "a.jsonl").read_text().splitlines()) == 40
    assert (out / "a.png").stat().st_size > 0 and (out / "a.csv").read_text().startswith("second,faces")
    summary = json.loads((out / "s.json").read_text())
    assert summary["settings"]["tracking"]["detect_every"] >= 1 and summary["result"]["frames_processed"] == 40
    err = capsys.readouterr().err
    assert "40 frames processed" in err and "unique tracks: 1" in err


def test_watch_no_smooth_and_no_track_flags(shared_models, face_video, tmp_path):
    assert main(["watch", str(face_video), "--no-smooth", "--detect-every", "1", "--quiet",
                 "--jsonl", str(tmp_path / "a.jsonl")]) == 0
    assert main(["watch", str(face_video), "--no-track", "--quiet", "--max-frames", "5"]) == 0


@pytest.mark.parametrize("source, message", [
    ("missing.mp4", "no such video file"),
    ("http://127.0.0.1:{port}/cam.mjpg", "did not open"),
])
def test_watch_bad_source_exits_non_zero(shared_models, tmp_path, capsys, source, message):
    rc = main(["watch", source.format(port=free_port()), "--open-timeout", "2"])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_watch_show_without_gui_points_elsewhere(shared_models, face_video, capsys):
    from maskwatch.video import has_gui

    if has_gui():
        pytest.skip("this OpenCV build has a GUI")
    assert main(["watch", str(face_video), "--show"]) == 2
    assert "live view" in capsys.readouterr().err
