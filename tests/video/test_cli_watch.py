import json

import pytest

from maskwatch.cli import main

from .conftest import count_frames, free_port


def test_watch_file_writes_every_output(shared_models, face_video, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="--chart needs the video extra (matplotlib)")
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


def test_watch_mjpeg_stream(shared_models, astronaut, tmp_path, capsys):
    from .conftest import MjpegServer, moving_frames

    jl = tmp_path / "cam.jsonl"
    with MjpegServer(moving_frames(astronaut, 20), fps=30) as server:
        rc = main(["watch", server.url, "--jsonl", str(jl), "--reconnect", "0", "--summary", str(tmp_path / "s.json")])
    assert rc == 1  # the camera went away and was not reconnected: outputs finished, non-zero exit
    lines = jl.read_text().splitlines()
    assert len(lines) >= 10 and all(json.loads(line)["frame"] >= 0 for line in lines)
    summary = json.loads((tmp_path / "s.json").read_text())["result"]
    assert summary["frames_processed"] + summary["frames_dropped"] == summary["frames_read"]
    assert "stream was lost" in capsys.readouterr().err


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_on_the_command_line(shared_models, astronaut, tmp_path, signame):
    """A real SIGINT (Ctrl-C) or SIGTERM to a running `maskwatch watch`: exit 130, playable video, whole
    JSON lines."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import moving_frames, write_video

    video = write_video(tmp_path / "long.mp4", moving_frames(astronaut, 40) * 15)  # 600 frames
    out, jl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "watch", str(video), "-o", str(out),
                             "--jsonl", str(jl), "--detect-every", "1", "--classify-every", "1"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and (not jl.exists() or jl.read_text().count("\n") < 20):
        time.sleep(0.1)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = jl.read_text().splitlines()
    assert 20 <= len(lines) < 600
    assert [json.loads(line)["frame"] for line in lines] == list(range(len(lines)))
    assert count_frames(out) == len(lines)
    assert "interrupted" in err


@pytest.mark.parametrize("suffix, codec", [(".mp4", "h264"), (".webm", "vp9")])
def test_watch_writes_h264_mp4_and_vp9_webm(shared_models, face_video, tmp_path, suffix, codec):
    av = pytest.importorskip("av", reason="the video extra (PyAV) writes H.264 / VP9")
    out = tmp_path / f"out{suffix}"
    assert main(["watch", str(face_video), "-o", str(out), "--quiet"]) == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec and stream.codec_context.pix_fmt == "yuv420p"
        assert ("mp4" if suffix == ".mp4" else "webm") in container.format.name
        assert sum(1 for _ in container.decode(stream)) == 40


def test_sigkill_during_watch_leaves_a_playable_video(shared_models, astronaut, tmp_path):
    """A real SIGKILL (no handler runs): the fragmented MP4 decodes up to within a second of the kill."""
    av = pytest.importorskip("av", reason="the video extra (PyAV) writes fragmented MP4")
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import moving_frames, write_video

    fps = 15
    video = write_video(tmp_path / "long.mp4", moving_frames(astronaut, 40) * 15, fps=fps)  # 600 frames
    out, jl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "watch", str(video), "-o", str(out),
                             "--jsonl", str(jl)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not jl.exists() or jl.read_text().count("\n") < 4 * fps):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    written = jl.read_text().count("\n")  # frames handed to the video writer (each line goes first)
    assert 4 * fps <= written < 600
    with av.open(str(out)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert written - fps <= decoded <= written, (written, decoded)


def test_watch_truncated_file_warns_and_exits_3(shared_models, astronaut, tmp_path, capsys):
    import cv2

    from .conftest import moving_frames

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
    for f in moving_frames(astronaut, 60):
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert main(["watch", str(path), "--jsonl", str(tmp_path / "a.jsonl")]) == 3
    assert "ended after" in capsys.readouterr().err


def test_watch_counts_per_label_in_every_output(shared_models, face_video, tmp_path, capsys):
    """Counts per label and the compliant share: per frame (JSON lines), per second (CSV), per run
    (summary JSON and the stderr summary); --header draws them above the annotated video."""
    import csv

    import cv2

    out = tmp_path / "out"
    assert main(["watch", str(face_video), "--jsonl", str(out / "f.jsonl"), "--csv", str(out / "c.csv"),
                 "--summary", str(out / "s.json"), "-o", str(out / "v.avi"), "--header"]) == 0
    for line in (out / "f.jsonl").read_text().splitlines():
        rec = json.loads(line)
        labels = [f.get("label") for f in rec["faces"]]
        counts = rec["counts"]
        assert counts["faces"] == len(labels)
        assert all(counts[label] == labels.count(label) for label in ("with_mask", "without_mask",
                                                                      "mask_worn_incorrectly"))
    rows = list(csv.DictReader((out / "c.csv").open()))
    assert rows and all("compliant_share" in r for r in rows)
    c = json.loads((out / "s.json").read_text())["result"]["compliance"]
    tracks = c["tracks_per_label"]
    assert c["compliant_share"] == round(tracks["with_mask"] / sum(tracks.values()), 4)
    assert sum(c["faces_per_label"].values()) <= c["faces_seen"]
    err = capsys.readouterr().err
    assert f"unique tracks: {c['unique_tracks']} (with_mask {tracks['with_mask']}" in err
    cap = cv2.VideoCapture(str(out / "v.avi"))
    ok, frame = cap.read()
    cap.release()
    source = cv2.VideoCapture(str(face_video))
    height = int(source.get(cv2.CAP_PROP_FRAME_HEIGHT))
    source.release()
    assert ok and frame.shape[0] > height and frame.shape[0] % 2 == height % 2  # the header band on top
