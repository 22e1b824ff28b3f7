import json

import pytest

from maskwatch.cli import main

from badinputs import write_jpeg


def test_classify_crops_and_bad_file(shared_models, shared_data, tmp_path, capsys):
    crop = sorted((shared_data / "crops" / "fm12k" / "without_mask").glob("*.jpg"))[0]
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    rc = main(["classify", str(crop), str(bad), "--jsonl", str(tmp_path / "c.jsonl")])
    assert rc == 1
    good_rec, bad_rec = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert good_rec["error"] is None and good_rec["label"] == "without_mask"
    assert set(good_rec["probs"]) == {"with_mask", "without_mask", "mask_worn_incorrectly"}
    assert abs(sum(good_rec["probs"].values()) - 1) < 1e-3
    assert bad_rec["label"] is None and "bad.jpg" in bad_rec["error"]
    assert "bad.jpg" in capsys.readouterr().err


def test_models_list_and_path(shared_models, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "yunet" in out and "mask-classifier" in out
    assert main(["models", "path", "yunet"]) == 0
    assert capsys.readouterr().out.strip().endswith("face_detection_yunet_2023mar.onnx")


@pytest.mark.parametrize("action", ["list", "path", "fetch"])
def test_unknown_model_name_is_a_one_line_error(action, capsys):
    assert main(["models", action, "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown model 'nope'" in err and "yunet" in err


def test_missing_model_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MASKWATCH_MODELS", str(tmp_path))
    monkeypatch.setenv("MASKWATCH_OFFLINE", "1")
    assert main(["models", "path", "yunet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "face_detection_yunet_2023mar.onnx" in err and "sha256" in err


def test_detect_with_missing_detector_model(monkeypatch, tmp_path, astronaut, capsys):
    monkeypatch.setenv("MASKWATCH_MODELS", str(tmp_path))
    good = write_jpeg(tmp_path / "a.jpg", astronaut)
    assert main(["detect", "--detector", "yunet", "--no-annotate", str(good)]) == 2
    assert "model 'yunet' not found" in capsys.readouterr().err


def test_default_detect_needs_no_download(monkeypatch, tmp_path, capsys):
    """Issue 16: right after install, with no network and no MASKWATCH_MODELS, the default works."""
    monkeypatch.delenv("MASKWATCH_MODELS", raising=False)
    monkeypatch.setenv("MASKWATCH_OFFLINE", "1")
    assert main(["detect", "--no-annotate", "examples/three_ways.jpg"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["error"] is None and len(rec["faces"]) == 3


def test_cli_parser_does_not_import_heavy_training_deps():
    """`pip install maskwatch` has no torch: building the CLI (every subcommand) must not need it."""
    import subprocess
    import sys

    code = ("import sys; from maskwatch.cli import build_parser; build_parser(); "
            "bad = [m for m in ('torch', 'torchvision', 'sklearn', 'streamlit', 'fastapi') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
