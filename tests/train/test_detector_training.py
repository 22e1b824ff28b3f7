"""The earlier CenterNet detector (scripts/build_detector.py): a tiny training run (2 steps on 4
images) -> checkpoint -> ONNX usable as '--detector maskwatch'."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from maskwatch.cli import main
from quant import assert_7_bit_weights


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_sources, pretrained):
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.train.detector import DetectorConfig, export, fit

    cfg = DetectorConfig(data=str(tiny_sources["voc"]), output=str(tmp_path_factory.mktemp("det") / "run"),
                         pretrained=str(pretrained) if pretrained else None, split="all", epochs=1, max_steps=2,
                         max_images=4, batch_size=2, crop_sizes=(128,), val_scale=0.5)
    out = fit(cfg, progress=False, layout=SHARED_LAYOUT)
    export(out / "best.pt", out / "maskwatch_detector.onnx")
    return out


def test_training_writes_checkpoints_history_and_onnx(tiny_run):
    for name in ("config.json", "split.json", "history.json", "last.pt", "best.pt", "maskwatch_detector.onnx"):
        assert (tiny_run / name).is_file(), name
    history = json.loads((tiny_run / "history.json").read_text())
    assert len(history) == 1 and np.isfinite(history[0]["loss"]) and "mAP50" in history[0]
    assert (tiny_run / "maskwatch_detector.onnx").stat().st_size < 8_000_000  # issue 6: <= 8 MB fp32


def test_checkpoint_carries_the_spec_the_onnx_file_gets(tiny_run):
    import onnx
    import torch

    from maskwatch import LABELS, ModelSpec

    ck = torch.load(tiny_run / "best.pt", map_location="cpu", weights_only=False)
    assert {"model", "optimizer", "epoch", "config", "spec", "history", "best", "bad"} <= set(ck)
    spec = ModelSpec.from_json(ck["spec"])
    assert spec.kind == "detector" and spec.labels == LABELS and spec.extra["stride"] == 4
    meta = {p.key: p.value for p in onnx.load(str(tiny_run / "maskwatch_detector.onnx")).metadata_props}
    assert ModelSpec.from_metadata(meta) == spec  # the export writes the checkpoint's spec


def test_resume_continues_from_last_checkpoint(tiny_run, tmp_path):
    from maskwatch.train.detector import DetectorConfig, fit

    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg.update(output=str(tmp_path / "resumed"), epochs=2, resume=str(tiny_run / "last.pt"))
    cfg["crop_sizes"], cfg["scale_range"] = tuple(cfg["crop_sizes"]), tuple(cfg["scale_range"])
    out = fit(DetectorConfig(**cfg), progress=False)
    assert [row["epoch"] for row in json.loads((out / "history.json").read_text())] == [1, 2]


def test_resume_after_an_early_stop_trains_no_further(tiny_run, tmp_path):
    import torch

    from maskwatch.train.detector import DetectorConfig, fit

    ck = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    ck["bad"] = 3  # the run stopped early: three epochs without a better validation mAP
    torch.save(ck, tmp_path / "stopped.pt")
    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg.update(output=str(tmp_path / "resumed"), epochs=5, patience=3, resume=str(tmp_path / "stopped.pt"))
    cfg["crop_sizes"], cfg["scale_range"] = tuple(cfg["crop_sizes"]), tuple(cfg["scale_range"])
    out = fit(DetectorConfig(**cfg), progress=False)
    assert not (out / "last.pt").exists() and not (out / "history.json").exists()


def test_exported_model_works_as_detector_maskwatch(tiny_run, tiny_sources, tmp_path, monkeypatch, astronaut):
    from maskwatch import create_detector, load

    det = create_detector("maskwatch", model_path=tiny_run / "maskwatch_detector.onnx", score_threshold=0.0)
    assert det.scale == 0.5 and det.spec.kind == "detector"
    faces = det.detect(astronaut)
    assert faces.probs is not None and faces.probs.shape == (len(faces), 3)
    assert load(det, classifier=None).detect(astronaut).probs is not None  # one pass keeps its classes

    models = tmp_path / "models"  # the registry finds the file by name, as for the shipped model
    models.mkdir()
    shutil.copy(tiny_run / "maskwatch_detector.onnx", models / "maskwatch_detector.onnx")
    monkeypatch.setenv("MASKWATCH_MODELS", str(models))
    out = tmp_path / "ev"
    assert main(["eval", "--data", str(tiny_sources["voc"]), "--split", "all", "--limit", "2", "-o", str(out),
                 "--detector", "maskwatch", "--classifier", "none", "--no-plots", "--quiet"]) == 0
    assert "mAP50" in json.loads((out / "detection_metrics.json").read_text())
    img = tmp_path / "astronaut.png"
    from maskwatch import write_image

    write_image(img, astronaut)
    assert main(["detect", str(img), "--detector", "maskwatch", "--classifier", "none", "--no-annotate",
                 "--jsonl", str(tmp_path / "o.jsonl"), "--quiet"]) == 0


def test_int8_quantisation_keeps_the_spec(tiny_run, tiny_sources, tmp_path, astronaut):
    from maskwatch import create_detector
    from maskwatch.train.detector import quantize
    from maskwatch.datasets import load_voc

    out = quantize(tiny_run / "maskwatch_detector.onnx", tmp_path / "int8.onnx", load_voc(tiny_sources["voc"]), 0.5, n=2)
    assert out["size_bytes"] < (tiny_run / "maskwatch_detector.onnx").stat().st_size / 2
    assert_7_bit_weights(out["path"])
    det = create_detector("maskwatch", model_path=out["path"], score_threshold=0.0)
    assert det.spec.kind == "detector" and det.detect(astronaut).probs is not None


def test_fine_tune_starts_from_weights_and_adds_closeups(tiny_run, tiny_sources, tmp_path, monkeypatch):
    import torch

    from maskwatch.evaluation import closeups
    from maskwatch.train.detector import DetectorConfig, closeup_cache, fit

    monkeypatch.setattr(closeups, "BENCHMARK_PER_CLASS", 2)  # the tiny folders hold 6 photos each
    root = tiny_sources["crops"].parent  # root/crops/<class>/: "crops" is the source
    benchmark = {f for f, _ in closeups.closeup_files(root, 2)}
    items = closeup_cache(root, per_class=3)
    assert 0 < len(items) <= 9 and all(it.boxes.shape == (1, 4) and len(it.labels) == 1 for it in items)
    h, w = items[0].image.shape[:2]
    assert 0 <= items[0].boxes[0, 0] < items[0].boxes[0, 2] <= w and items[0].boxes[0, 3] <= h
    assert {f for f, _ in closeups.closeup_files(root, 3, skip=2)}.isdisjoint(benchmark)

    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg.update(output=str(tmp_path / "ft"), epochs=1, lr=0.0, init=str(tiny_run / "best.pt"), closeups=str(root),
               closeups_per_class=3)
    cfg["crop_sizes"], cfg["scale_range"] = tuple(cfg["crop_sizes"]), tuple(cfg["scale_range"])
    out = fit(DetectorConfig(**cfg), progress=False)
    start = torch.load(tiny_run / "best.pt", weights_only=False)["model"]["out_heat.weight"]
    after = torch.load(out / "last.pt", weights_only=False)["model"]["out_heat.weight"]
    assert torch.equal(start, after)  # lr 0: the head kept the weights it started from


def test_giou_box_loss_is_zero_for_exact_boxes_and_grows_with_the_offset():
    torch = pytest.importorskip("torch", reason="the train extra (torch) runs the detector in PyTorch")
    from maskwatch.train.detector import detection_loss

    g = 8
    heat = torch.full((1, 1, g, g), -4.0)
    cls = torch.zeros((1, 3, g, g))
    reg = torch.tensor([[0.5, 0.5, 1.0, 1.2]])
    batch = {"heat": torch.zeros((1, 1, g, g)), "ind": torch.tensor([[9]]), "reg": reg[None],
             "label": torch.tensor([[0]]), "mask": torch.tensor([[1.0]])}

    def box_part(pred_reg, kind):
        box = torch.zeros((1, 4, g, g))
        box.view(1, 4, -1)[0, :, 9] = pred_reg
        return detection_loss((heat, cls, box), batch, torch.ones(3), kind)[1]["box"]

    assert box_part(reg[0], "l1+giou") == pytest.approx(0.0, abs=1e-6)
    off = torch.tensor([1.5, 0.5, 1.0, 1.2])  # one cell to the right
    assert box_part(off, "l1") == pytest.approx(1.0)
    assert box_part(off, "l1+giou") > box_part(off, "l1") + 0.3  # GIoU adds the boxes' overlap loss
    with pytest.raises(ValueError, match="box_loss"):
        box_part(off, "iou")
