"""The reference decoder of docs/mobile.md, run as the page shows it: on the exported LiteRT file it
gives the faces the pipeline gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def doc_decoder() -> dict:
    text = (ROOT / "docs" / "mobile.md").read_text()
    block = text.split("<!-- decoder:start -->", 1)[1].split("<!-- decoder:end -->", 1)[0]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/mobile.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace


def test_reference_decoder_matches_the_pipeline(litert_models, monkeypatch):
    import maskwatch
    from maskwatch.detectors import rfb
    from maskwatch.imageio import read_image

    monkeypatch.setenv("MASKWATCH_MODELS", str(litert_models[0]))
    doc = doc_decoder()
    np.testing.assert_array_equal(doc["priors"](480, 640), rfb.priors(480, 640))
    np.testing.assert_array_equal(doc["priors"](238, 642), rfb.priors(238, 642))
    for precision in ("float32", "int8"):
        interpreter = doc["Interpreter"](model_path=str(litert_models[0] / f"maskwatch_rfb_{precision}.tflite"))
        pipe = maskwatch.load(runtime="tflite" if precision == "float32" else "tflite-int8")
        image = read_image(ROOT / "examples" / "three_ways.jpg")  # 642 px wide: the pipeline keeps its scale
        boxes, scores, labels, probs = doc["detect"](interpreter, image)
        ref = pipe.detect(image)
        assert len(boxes) == len(ref) > 0
        np.testing.assert_allclose(boxes, ref.xyxy, atol=0.05)
        np.testing.assert_allclose(scores, ref.det_score, atol=1e-4)
        assert labels == ref.label
