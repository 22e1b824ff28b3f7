"""`maskwatch detect` through its entry point: outputs, JSON contract, bad inputs, exit codes."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from maskwatch.cli import main

from badinputs import bad_files, cmyk_jpeg, exif_rotated, png_header_only, write_jpeg


@pytest.fixture
def good(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    return write_jpeg(folder / "astro.jpg", astronaut)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_detect_writes_annotated_image_jsonl_and_csv(shared_models, good, tmp_path):
    out = tmp_path / "out"
    rc = main(["detect", str(good), "-o", str(out), "--jsonl", str(tmp_path / "r.jsonl"), "--csv", str(tmp_path / "r.csv")])
    assert rc == 0
    assert (out / "astro.jpg").is_file()
    (rec,) = read_jsonl(tmp_path / "r.jsonl")
    assert rec["source"] == str(good) and rec["error"] is None
    assert (rec["width"], rec["height"]) == (512, 512)
    face = rec["faces"][0]
    assert {"box", "det_score", "label", "confidence", "probs"} <= set(face)
    assert face["label"] in ("with_mask", "without_mask", "mask_worn_incorrectly")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == len(rec["faces"]) and rows[0]["label"] == face["label"]  # one CSV row per face


def test_json_lines_go_to_stdout_by_default(shared_models, good, tmp_path, capsys):
    assert main(["detect", str(good), "--no-annotate", "-o", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["faces"]
    assert not (tmp_path / "o").exists()


def test_bad_inputs_are_reported_and_skipped(shared_models, good, tmp_path, astronaut, capsys):
    bad = bad_files(tmp_path / "bad", astronaut)
    huge = png_header_only(tmp_path / "bad" / "huge.png", 20000, 20000)
    inputs = [str(bad["missing"]), str(good), *(str(p) for k, p in bad.items() if k != "missing"), str(huge)]
    rc = main(["detect", *inputs, "-o", str(tmp_path / "out"), "--jsonl", str(tmp_path / "r.jsonl"), "--quiet"])
    assert rc == 1
    records = read_jsonl(tmp_path / "r.jsonl")
    assert [r["source"] for r in records] == inputs  # every input has its line, in order
    errors = {r["source"]: r["error"] for r in records}
    assert errors[str(good)] is None
    assert all(errors[i] for i in inputs if i != str(good))
    assert "20000x20000" in errors[str(huge)]
    stderr = capsys.readouterr().err
    for path in inputs:
        if path != str(good):
            assert any(path in line for line in stderr.splitlines()), path
    assert (tmp_path / "out" / "astro.jpg").is_file()


def test_unusual_but_valid_images_are_processed(shared_models, tmp_path, astronaut):
    pytest.importorskip("PIL", reason="Pillow (test extra) writes CMYK and EXIF JPEGs")
    import cv2
    import numpy as np

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGRA))
    cv2.imwrite(str(folder / "deep.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    cmyk_jpeg(folder / "cmyk.jpg", astronaut)
    exif_rotated(folder / "phone.jpg", astronaut)
    # YuNet alone: maskwatch's crowd-trained detector also sees a face in the suit's badge (docs/detection.md)
    rc = main(["detect", str(folder), "--detector", "yunet", "-o", str(tmp_path / "out"), "--jsonl",
               str(tmp_path / "r.jsonl"), "--quiet"])
    assert rc == 0
    records = read_jsonl(tmp_path / "r.jsonl")
    assert len(records) == 5
    for r in records:
        confident = [f for f in r["faces"] if f["det_score"] >= 0.5]  # the default threshold favours recall
        assert r["error"] is None and len(confident) == 1, r["source"]


def test_glob_and_options(shared_models, good, tmp_path):
    rc = main(["detect", str(good.parent / "*.jpg"), "--detector", "haar", "--min-face", "50", "--blur",
               "-o", str(tmp_path / "o"), "--jsonl", str(tmp_path / "r.jsonl")])
    assert rc == 0
    (rec,) = read_jsonl(tmp_path / "r.jsonl")
    assert len(rec["faces"]) == 1
    assert (tmp_path / "o" / "astro.jpg").is_file()


def test_no_inputs_found(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "*.jpg")]) == 1
    out = capsys.readouterr()
    assert "the pattern matches nothing" in out.err
    (rec,) = [json.loads(line) for line in out.out.splitlines()]
    assert rec["source"] == str(tmp_path / "*.jpg") and "matches nothing" in rec["error"]


def test_every_odd_input_gets_one_row(shared_models, good, tmp_path, capsys):
    import os

    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "folder.jpg").mkdir()
    (odd / "loops").mkdir()
    os.symlink("loop", odd / "loops" / "loop")
    os.mkfifo(odd / "fifo.jpg")
    os.symlink("/dev/zero", odd / "zero.jpg")
    os.symlink("self", odd / "self")
    latin1 = odd / os.fsdecode(b"caf\xe9.jpg")
    latin1.write_bytes(good.read_bytes())
    newline = odd / "two\nlines.jpg"
    newline.write_bytes(b"not an image")
    (odd / "mixed").mkdir()
    (odd / "mixed" / "noext").write_bytes(good.read_bytes())
    (odd / "mixed" / "notes.txt").write_text("hello")
    inputs = [odd / n for n in ("folder.jpg", "loops", "fifo.jpg", "zero.jpg", "self")] + [latin1, newline, odd / "mixed"]
    rc = main(["detect", *map(str, inputs), "--no-annotate", "--jsonl", str(tmp_path / "r.jsonl"),
               "--csv", str(tmp_path / "r.csv"), "--quiet"])
    assert rc == 1
    records = read_jsonl(tmp_path / "r.jsonl")
    got = {r["source"]: r["error"] for r in records}
    sources = [str(p) for p in inputs[:-1]] + [str(odd / "mixed" / "noext")]
    assert [r["source"] for r in records] == sources  # one answer each, in order (a FIFO does not hang)
    assert "is a directory of no images" in got[str(odd / "folder.jpg")]
    assert "symlink loop" in got[str(odd / "loops")] and "symlink loop" in got[str(odd / "self")]
    assert "not a regular file (a FIFO)" in got[str(odd / "fifo.jpg")]
    assert "not a regular file (a character device)" in got[str(odd / "zero.jpg")]
    assert got[str(latin1)] is None and got[str(odd / "mixed" / "noext")] is None
    err = capsys.readouterr().err
    assert "two\\nlines.jpg: not a readable image" in err  # one line, the newline escaped
    assert "1 file(s) skipped: 1 not an image" in err
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert {r["source"] for r in rows} >= {str(odd / "caf\\xe9.jpg"), str(odd / "two\\nlines.jpg")}


def test_existing_outputs_are_not_replaced_without_overwrite(shared_models, good, tmp_path, capsys):
    jsonl = tmp_path / "r.jsonl"
    base = ["detect", str(good), "-o", str(tmp_path / "out"), "--jsonl", str(jsonl), "--quiet"]
    assert main(base) == 0
    before = jsonl.read_bytes()
    assert main(base) == 2
    assert "r.jsonl exists; add --resume" in capsys.readouterr().err
    assert jsonl.read_bytes() == before
    assert main(base[:-3] + ["--jsonl", str(tmp_path / "other.jsonl"), "--quiet"]) == 2
    assert "astro.jpg exists" in capsys.readouterr().err
    assert main(base + ["--overwrite"]) == 0
    assert main(["detect", str(good), "-o", str(good), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_resume_continues_a_killed_batch(shared_models, astronaut, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        write_jpeg(folder / f"p{i}.jpg", astronaut)
    (folder / "sub").mkdir()
    write_jpeg(folder / "sub" / "p0.jpg", astronaut)  # same stem: the second is p0_1.jpg in both runs
    jsonl, csv_path, out = tmp_path / "r.jsonl", tmp_path / "r.csv", tmp_path / "out"
    args = ["detect", str(folder), "--detector", "yunet", "-o", str(out), "--jsonl", str(jsonl), "--csv", str(csv_path),
            "--quiet"]
    assert main(args) == 0
    full = read_jsonl(jsonl)
    full_rows = list(csv.DictReader(csv_path.open()))
    # as a kill would leave it: two complete lines, a torn third, CSV rows of the third
    lines = jsonl.read_text().splitlines(keepends=True)
    jsonl.write_text(lines[0] + lines[1] + lines[2][:30])
    rows = csv_path.read_text().splitlines(keepends=True)
    csv_path.write_text("".join(rows[:4]))
    for name in ("p2.jpg", "p0_1.jpg"):  # not done yet: (re)written by the resumed run
        (out / name).unlink()
    assert main(args) == 2  # refuses to truncate
    assert main(args + ["--resume"]) == 0
    assert "resuming: 2 of 5 input(s) already" in capsys.readouterr().err
    assert read_jsonl(jsonl) == full  # every photo exactly once, in order
    assert list(csv.DictReader(csv_path.open())) == full_rows
    assert sorted(p.name for p in out.iterdir()) == ["p0.jpg", "p0_1.jpg", "p1.jpg", "p2.jpg", "p3.jpg"]
    assert main(["detect", str(folder), "--resume"]) == 2
    assert "--resume needs --jsonl" in capsys.readouterr().err


def test_console_script_entry_point(shared_models, good, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "maskwatch.cli", "detect", str(good), "--no-annotate"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["faces"][0]["label"]


def test_tile_finds_faces_a_squeezing_detector_misses_in_a_large_photo(shared_models, astronaut, tmp_path):
    """The res10 SSD squeezes any photo into 300x300: two faces in a 2400x1600 photo shrink to 12 px."""
    import numpy as np

    canvas = np.full((1600, 2400, 3), 128, np.uint8)
    canvas[100:612, 100:612] = astronaut
    canvas[900:1412, 1700:2212] = astronaut
    path = write_jpeg(tmp_path / "large.jpg", canvas)
    counts = {}
    for tile in (None, 800):
        out = tmp_path / f"r{tile}.jsonl"
        args = ["detect", str(path), "--detector", "ssd", "--no-annotate", "--jsonl", str(out), "--quiet"]
        assert main(args + (["--tile", str(tile)] if tile else [])) == 0
        (rec,) = read_jsonl(out)
        counts[tile] = len(rec["faces"])
    assert counts == {None: 0, 800: 2}


def test_min_side_flag_reaches_the_detector():
    from maskwatch.cli import build_parser
    from maskwatch.cli.common import pipeline_from_args

    args = build_parser().parse_args(["detect", "x.jpg", "--detector", "haar", "--scale", "0.8", "--min-side", "512"])
    det = pipeline_from_args(args).describe()["detector"]
    assert (det["scale"], det["min_side"]) == (0.8, 512)
    default = pipeline_from_args(build_parser().parse_args(["detect", "x.jpg", "--detector", "haar", "--scale", "0.8"]))
    assert default.describe()["detector"]["min_side"] == 0  # an explicit scale alone replaces the measured upscaling
