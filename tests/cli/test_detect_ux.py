"""What a user of `maskwatch detect` sees: the summary lines, formats kept, one error per dead end."""

import json
import re

import cv2
import numpy as np
import pytest

from maskwatch.cli import build_parser, main

from badinputs import write_jpeg

THREE_WAYS = "examples/three_ways.jpg"  # one face per label


def test_batch_summary_line_and_per_photo_lines(tmp_path, capsys):
    args = ["detect", THREE_WAYS, THREE_WAYS, "--no-annotate", "--jsonl", str(tmp_path / "r.jsonl")]
    assert main(args) == 0
    err = capsys.readouterr().err
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    labels = [f["label"] for rec in lines for f in rec["faces"]]
    share = labels.count("with_mask") / len(labels)
    summary = [x for x in err.splitlines() if "photo(s):" in x]
    assert summary == [f"maskwatch: 2 photo(s): {len(labels)} face(s): with_mask {labels.count('with_mask')}, "
                       f"without_mask {labels.count('without_mask')}, mask_worn_incorrectly "
                       f"{labels.count('mask_worn_incorrectly')}; {100 * share:.0f}% compliant"]
    assert main(args + ["--overwrite", "-v"]) == 0
    per_photo = [x for x in capsys.readouterr().err.splitlines() if x.startswith(f"maskwatch: {THREE_WAYS}: ")]
    assert len(per_photo) == 2 and all(f"{len(lines[0]['faces'])} face(s)" in x for x in per_photo)
    assert main(args + ["--overwrite", "--quiet"]) == 0
    assert "photo(s):" not in capsys.readouterr().err


def test_annotated_images_keep_the_input_format(astronaut, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), astronaut[:, :, ::-1])
    write_jpeg(src / "b.jpeg", astronaut)
    cv2.imwrite(str(src / "c.bmp"), astronaut[:, :, ::-1])
    cv2.imwrite(str(src / "d.webp"), astronaut[:, :, ::-1])
    (src / "e.gif").write_bytes(b"")  # unreadable: no output image at all
    out = tmp_path / "out"
    main(["detect", str(src), "-o", str(out), "--quiet", "--jsonl", str(tmp_path / "r.jsonl")])
    written = {p.name: p.read_bytes()[:4] for p in out.iterdir()}
    assert set(written) == {"a.png", "b.jpeg", "c.bmp", "d.webp"}
    assert written["a.png"] == b"\x89PNG" and written["b.jpeg"][:2] == b"\xff\xd8" and written["c.bmp"][:2] == b"BM"


def test_other_formats_are_written_as_jpeg(tmp_path):
    from maskwatch.cli.detect import _output_path

    used = set()
    assert _output_path(tmp_path, tmp_path / "x.tga", used).name == "x.jpg"
    assert _output_path(tmp_path, tmp_path / "X.PNG", used).name == "X.png"
    assert _output_path(tmp_path, tmp_path / "sub" / "X.png", used).name == "X_1.png"


def test_output_pointing_at_a_file_is_one_error_for_the_whole_batch(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("a file")
    assert main(["detect", THREE_WAYS, THREE_WAYS, THREE_WAYS, "-o", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"maskwatch: error: -o {target}: is a file, not a folder for the annotated images"]
    assert target.read_text() == "a file"


def test_detect_on_a_video_points_to_watch(tmp_path, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert main(["detect", str(video), "--no-annotate"]) == 1
    err = capsys.readouterr().err
    assert "use `maskwatch watch` for videos" in err


@pytest.mark.parametrize("command", ["detect", "watch", "eval", "serve", "app", "train", "train-detector", "export",
                                     "classify", "eval-classifier", "models"])
def test_help_states_each_default_once(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    for chunk in re.split(r"\s(?=-{1,2}[a-z])", text):  # one flag's help at a time
        assert chunk.count("(default:") + chunk.count("(default ") <= 1, chunk


def test_eval_has_one_calibrate_switch():
    parser = build_parser()
    assert parser.parse_args(["eval", "--data", "d"]).calibrate is None
    assert parser.parse_args(["eval", "--data", "d", "--calibrate"]).calibrate is True
    assert parser.parse_args(["eval", "--data", "d", "--no-calibrate"]).calibrate is False
    assert parser.parse_args(["detect", "x", "--no-calibrate"]).calibrate is False


def test_models_list_columns_line_up(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    starts = [header.index(col) for col in ("file", "where", "licence")]
    for line in lines[1:]:
        for start in starts:  # every column begins where its heading does, after a gap
            assert line[start - 2:start] == "  " and line[start] != " ", line


def test_detector_and_classifier_flags_name_a_model_or_say_what_is_wrong(tmp_path, capsys):
    from maskwatch import registry

    mine = tmp_path / "trained.onnx"
    mine.write_bytes(registry.resolve("maskwatch-rfb").read_bytes())
    assert main(["detect", THREE_WAYS, "--detector", str(mine), "--no-annotate", "--quiet"]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert sorted(f["label"] for f in faces) == ["mask_worn_incorrectly", "with_mask", "without_mask"]

    with pytest.raises(SystemExit) as exit_:
        main(["detect", THREE_WAYS, "--detector", "retinaface", "--no-annotate"])
    assert exit_.value.code == 2
    assert "argument --detector: 'retinaface' is neither one of haar, maskwatch, rfb" in capsys.readouterr().err

    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    for flag in ("--detector", "--classifier"):
        assert main(["detect", THREE_WAYS, flag, str(notes), "--no-annotate", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"maskwatch: error: {notes}: not an ONNX model"), err
