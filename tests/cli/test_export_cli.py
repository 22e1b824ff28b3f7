"""``maskwatch export default --format tflite`` and ``maskwatch detect --runtime tflite``."""

from __future__ import annotations

import json

from maskwatch.cli import main


def test_export_default_reports_what_it_wrote(litert_models):
    out, report = litert_models  # the fixture ran the command
    for part in ("detector", "classifier"):
        for precision in ("float32", "int8"):
            entry = report[part][precision]
            assert (out / entry["file"]).stat().st_size == entry["size_bytes"]
            assert set(entry["max_abs_diff"]) == set(entry["outputs"])
    assert report["output"] == str(out)


def test_export_default_needs_tflite_format(capsys):
    assert main(["export", "default"]) == 2
    assert "--format tflite" in capsys.readouterr().err


def test_detect_runtime_tflite_gives_the_onnx_faces(litert_models, monkeypatch, capsys):
    monkeypatch.setenv("MASKWATCH_MODELS", str(litert_models[0]))
    lines = {}
    for runtime in ("onnx", "tflite"):
        assert main(["detect", "--no-annotate", "--runtime", runtime, "examples/three_ways.jpg"]) == 0
        lines[runtime] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    faces = {k: v["faces"] for k, v in lines.items()}
    assert len(faces["tflite"]) == len(faces["onnx"]) == 3
    assert [f["label"] for f in faces["tflite"]] == [f["label"] for f in faces["onnx"]]
