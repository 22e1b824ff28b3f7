"""A tiny model trained for a few steps on a few real images: the whole train -> eval -> export path."""

import json

import numpy as np
import pytest

from maskwatch import MaskClassifier, ModelSpec
from maskwatch.cli import main
from maskwatch.train.engine import EarlyStopping, TrainConfig, fit, load_checkpoint
from quant import assert_7_bit_weights


@pytest.fixture(scope="module")
def run(tiny_sources, pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=[str(tiny_sources["crops"]), str(tiny_sources["voc"])], output=str(out),
                      pretrained=str(pretrained) if pretrained else None, input_size=64, canvas=80,
                      head_epochs=2, epochs=2, batch_size=8, max_steps=2, workers=0, val_fraction=0.25)
    fit(cfg, progress=False)
    return out


def test_run_folder_has_everything(run):
    for name in ("config.json", "split.json", "history.json", "best.pt", "last.pt"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [h["phase"] for h in history] == [1, 1, 2, 2]
    split = json.loads((run / "split.json").read_text())
    assert not {r["group"] for r in split["train"]} & {r["group"] for r in split["val"]}


def test_checkpoint_carries_model_optimiser_and_spec(run):
    import torch

    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "epoch", "config", "spec", "history"} <= set(ckpt)
    assert ckpt["epoch"] == 2
    model, spec, _ = load_checkpoint(run / "best.pt")
    assert spec.input_size == 64 and spec.labels == ("with_mask", "without_mask", "mask_worn_incorrectly")
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_resume_continues_from_the_last_epoch(run, tiny_sources, pretrained, tmp_path):
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(output=str(tmp_path / "resumed"), resume=str(run / "last.pt"), epochs=3)
    out = fit(TrainConfig(**cfg), progress=False)
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history if h["phase"] == 2] == [1, 2, 3]


def test_early_stopping():
    stop = EarlyStopping(patience=2)
    assert stop.step(1.0) == (True, False)
    assert stop.step(0.5) == (True, False)
    assert stop.step(0.6) == (False, False)
    assert stop.step(0.7) == (False, True)
    assert EarlyStopping(1).step(float("nan")) == (False, False)


@pytest.mark.parametrize("mode, best, stale, values, expected", [
    ("max", -1.0, 0, [0.0, 0.2, 0.1, 0.1], [(True, False), (True, False), (False, False), (False, True)]),
    ("max", 0.5, 1, [0.4], [(False, True)]),  # resumed one stale epoch in: the second one stops it
    ("min", None, 0, [float("nan"), 1.0], [(False, False), (True, False)]),
])
def test_early_stopping_table(mode, best, stale, values, expected):
    stop = EarlyStopping(2, best=best, mode=mode, stale=stale)
    assert [stop.step(v) for v in values] == expected
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(2, mode="up")


def test_export_onnx_matches_torch_and_carries_spec(run, tmp_path):
    from maskwatch.train.export import export_checkpoint

    result = export_checkpoint(run / "best.pt", tmp_path / "m.onnx", int8=True, calibration=16)
    assert result["onnx"]["max_abs_diff"] < 1e-4
    clf = MaskClassifier(tmp_path / "m.onnx")
    assert clf.spec == ModelSpec.from_json(clf.spec.to_json()) and clf.spec.input_size == 64
    probs = clf.predict_crops(np.zeros((3, 64, 64, 3), np.uint8))
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-4)
    q = MaskClassifier(tmp_path / "m_int8.onnx")
    assert q.spec.input_size == 64
    assert (tmp_path / "m_int8.onnx").stat().st_size < (tmp_path / "m.onnx").stat().st_size
    assert_7_bit_weights(tmp_path / "m_int8.onnx")
    assert 0 <= result["int8_val_accuracy"] <= 1 and 0 <= result["fp32_val_accuracy"] <= 1


def test_dequantized_int8_model_computes_what_the_fp32_model_does(run, tmp_path):
    from maskwatch.train.export import dequantize_qdq, export_checkpoint

    export_checkpoint(run / "best.pt", tmp_path / "m.onnx", int8=True, calibration=16)
    fp32 = dequantize_qdq(tmp_path / "m_int8.onnx", tmp_path / "deq.onnx")
    crops = np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    crops[:4] //= 3  # dark crops too
    want = MaskClassifier(tmp_path / "m.onnx").predict_crops(crops)
    got = MaskClassifier(fp32).predict_crops(crops)
    assert np.abs(got - want).max() < 0.05  # only the weights' and activations' rounding differs
    import onnx

    ops = {n.op_type for n in onnx.load(str(fp32)).graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}


def test_evaluate_writes_report_and_plots(run, tmp_path):
    assert main(["eval-classifier", "--model", str(run / "best.pt"), "-o", str(tmp_path / "ev"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "ev" / "eval_metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1
    assert set(metrics["per_class"]) == {"with_mask", "without_mask", "mask_worn_incorrectly"}
    assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["n"]
    for png in ("eval_confusion.png", "eval_roc_pr.png"):
        assert (tmp_path / "ev" / png).stat().st_size > 1000


def test_cli_train_lean_head_from_scratch(tiny_sources, tmp_path, capsys):
    rc = main(["train", "--data", str(tiny_sources["crops"]), "-o", str(tmp_path / "r"), "--pretrained", "none",
               "--arch", "mobilenet_v3_small", "--head", "lean", "--input-size", "48", "--head-epochs", "1",
               "--epochs", "1", "--max-steps", "1", "--batch-size", "4", "--workers", "0", "--quiet"])
    assert rc == 0
    assert (tmp_path / "r" / "curves.png").is_file() and (tmp_path / "r" / "val_metrics.json").is_file()
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["arch"] == "mobilenet_v3_small" and cfg["head"] == "lean" and cfg["pretrained"] is None
    assert "precision" in capsys.readouterr().out  # the seed-style classification report


def test_sample_weights_balance_classes_and_sources():
    from maskwatch.train.engine import sample_weights

    labels = np.array([0] * 90 + [0] * 10 + [1] * 20)
    sources = np.array(["big"] * 90 + ["small"] * 10 + ["big"] * 20)
    w = sample_weights(labels, sources, 3, by_source=True)
    assert w[labels == 0].sum() == pytest.approx(0.5) and w[labels == 1].sum() == pytest.approx(0.5)
    assert w[:90].sum() / w[90:100].sum() == pytest.approx(3.0)  # sqrt(90) / sqrt(10)
    plain = sample_weights(labels, sources, 3, by_source=False)
    assert plain[:90].sum() / plain[90:100].sum() == pytest.approx(9.0)


def test_tflite_export(run, tmp_path):
    """TFLite for Android: runs where the optional 'tflite' extra (onnx2tf + TensorFlow) installs."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("onnx2tf") is None or importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TFLite export needs the optional 'tflite' extra (onnx2tf, tensorflow)")
    # in a child process: TensorFlow loaded into the test process made a later Playwright test crash it
    done = subprocess.run([sys.executable, "-m", "maskwatch.cli", "export", str(run / "best.pt"), "-o",
                           str(tmp_path / "m.onnx"), "--format", "tflite"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["tflite"].endswith(".tflite") and (tmp_path / "m_tflite").is_dir()


def test_hash_split_sources_join_without_changing_the_group_split(tiny_sources):
    """A dataset split by photo as the detector splits it (``hash_split``) adds its faces on the
    detector's sides and leaves the group split of the other sources exactly as it was."""
    from maskwatch.datasets import hash_split_samples
    from maskwatch.train.engine import split_samples

    base = TrainConfig(data=[str(tiny_sources["crops"])])
    samples, train, val = split_samples(base)
    more, more_train, more_val = split_samples(TrainConfig(data=base.data, hash_split=[str(tiny_sources["voc"])]))
    assert more[: len(samples)] == samples and more_train[: len(train)] == train and more_val[: len(val)] == val
    want_train, want_val = hash_split_samples(tiny_sources["voc"], base.val_fraction)
    assert [more[i] for i in more_train[len(train):]] == want_train
    assert [more[i] for i in more_val[len(val):]] == want_val
    assert len(more) == len(samples) + len(want_train) + len(want_val)
