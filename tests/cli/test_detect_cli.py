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
    assert len(rows) == 1 and rows[0]["label"] == face["label"]


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
    assert "no input images" in capsys.readouterr().err


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
