"""The RFB detector's training side: the port of the published weights, data, a tiny run, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from maskwatch.detectors import rfb
from maskwatch.labels import LABELS
from maskwatch.train.rfb import data as D
from maskwatch.train.rfb.loop import RFBConfig, fit
from maskwatch.train.rfb.model import RFBDetector, RFBInference, init_from_upstream, load_upstream
from quant import assert_7_bit_weights


@pytest.fixture(scope="module")
def upstream_pth(shared_models):
    path = shared_models / "ultralight_RFB-640-masked_face-v2.pth"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def photo_input():
    import cv2

    from maskwatch import read_image

    image = cv2.resize(read_image("examples/three_ways.jpg"), (640, 480))
    return torch.from_numpy(rfb.normalize(image[None]))


def test_port_matches_the_official_onnx_on_a_real_photo(upstream_pth, photo_input, shared_models):
    """strict=True load, then the same scores and boxes as the published ONNX export (the peer)."""
    import onnxruntime as ort

    peer = shared_models.parent / "peers" / "ultralight_RFB-640-masked_face-v2.onnx"
    if not peer.is_file():
        pytest.skip(f"{peer} not found")
    model = RFBInference(load_upstream(upstream_pth)).eval()
    with torch.no_grad():
        scores, locs = (t.numpy() for t in model(photo_input))
    sess = ort.InferenceSession(str(peer), providers=["CPUExecutionProvider"])
    ref_scores, ref_boxes = sess.run(None, {sess.get_inputs()[0].name: photo_input.numpy()})
    assert np.abs(scores - ref_scores).max() < 1e-5
    assert np.abs(rfb.decode_boxes(locs[0], rfb.priors(480, 640)) - ref_boxes[0]).max() < 1e-5
    assert (1 - scores[0, :, 0]).max() > 0.9  # it does see the faces


def test_class_head_starts_from_the_face_and_masked_face_scores(upstream_pth, photo_input):
    up = RFBInference(load_upstream(upstream_pth)).eval()
    new = RFBInference(init_from_upstream(upstream_pth, LABELS)).eval()
    with torch.no_grad():
        s_up, l_up = (t.numpy()[0] for t in up(photo_input))
        s_new, l_new = (t.numpy()[0] for t in new(photo_input))
    np.testing.assert_array_equal(l_up, l_new)  # box heads copied
    top_up = set(np.argsort(s_up[:, 0])[:20])
    top_new = set(np.argsort(s_new[:, 0])[:20])
    assert len(top_up & top_new) >= 18  # the same priors find the faces
    faces = np.argsort(s_up[:, 0])[:50]
    masked_up = s_up[faces, 2] > s_up[faces, 1]  # masked_face vs face
    masked_new = s_new[faces, 1] > s_new[faces, 2]  # with_mask vs without_mask
    assert (masked_up == masked_new).mean() > 0.95


@pytest.mark.parametrize("assign", ["iou", "atss"])
def test_match_gives_every_face_a_prior(assign):
    boxes = np.float32([[10, 10, 18, 18], [100, 50, 220, 170], [300, 200, 306, 207]])  # tiny faces too
    labels = np.int64([1, 2, 3])
    lab, loc = D.match(boxes, labels, 240, 320, assign=assign)
    assert set(lab[lab > 0]) == {1, 2, 3}
    prior = rfb.priors(240, 320)
    for k in range(3):
        i = np.nonzero(lab == k + 1)[0][0]
        back = rfb.decode_boxes(loc[i:i + 1], prior[i:i + 1])[0] * [320, 240, 320, 240]
        np.testing.assert_allclose(back, boxes[k], atol=1e-2)
    assert (D.match(boxes[:0], labels[:0], 240, 320)[0] == 0).all()


def test_atss_evens_out_the_positives_of_small_and_large_faces():
    def positives(side, assign):
        counts = []
        for x in range(20, 200, 23):  # the same face at positions across the prior grid
            box = np.float32([[x, x / 2 + 10, x + side, x / 2 + 10 + 1.2 * side]])
            counts.append((D.match(box, np.int64([1]), 384, 384, assign=assign)[0] > 0).sum())
        return np.mean(counts)

    iou = {side: positives(side, "iou") for side in (10, 160)}
    atss = {side: positives(side, "atss") for side in (10, 160)}
    assert atss[10] > iou[10] and atss[160] < iou[160]
    assert atss[160] / atss[10] < iou[160] / iou[10] / 2
    with pytest.raises(ValueError, match="assign"):
        D.match(np.float32([[0, 0, 9, 9]]), np.int64([1]), 64, 64, assign="nearest")


def test_atss_positives_sit_inside_their_face():
    gt = np.float32([[0.30, 0.30, 0.40, 0.42]])
    prior = rfb.priors(256, 256)
    from maskwatch import ops

    iou = ops.box_iou(gt, rfb.to_corners(prior))
    pos = D.atss_positives(gt, prior, iou, 256, 256)[0]
    assert pos.any()
    cx, cy = prior[pos, 0], prior[pos, 1]
    assert ((cx > 0.30) & (cx < 0.40) & (cy > 0.30) & (cy < 0.42)).all()
    assert iou[0, pos].min() > np.median(iou[0, iou[0] > 0])  # the better-overlapping candidates


def test_box_style_transform_moves_from_one_style_to_another_and_back():
    boxes = np.float32([[10, 20, 50, 80], [0, 0, 5, 9]])
    a, b = (-0.014, 0.036, 0.997, 0.951), (0.003, 0.113, 1.082, 0.934)
    np.testing.assert_allclose(D.box_style_transform(boxes, a, a), boxes, atol=1e-5)
    moved = D.box_style_transform(boxes, a, b)
    assert (moved[:, 1] > boxes[:, 1]).all()  # fmd's boxes sit lower than ilc's
    np.testing.assert_allclose(D.box_style_transform(moved, b, a), boxes, atol=1e-4)


def _sample(rng, labels, side=200):
    image = rng.integers(0, 255, (side, side + 40, 3), dtype=np.uint8)
    boxes = np.float32([[20 + 50 * i, 30, 60 + 50 * i, 80] for i in range(len(labels))])
    return D.Sample(image, boxes, np.int64(labels))


def test_augmenter_keeps_boxes_inside_and_balances_classes():
    rng = np.random.default_rng(0)
    samples = [_sample(rng, [1, 1]) for _ in range(8)] + [_sample(rng, [3])]
    aug = D.Augmenter(samples)
    assert aug.weights[3] > aug.weights[1]
    assert aug.p[-1] > aug.p[0]  # the photo with the rare class is drawn more often
    seen = np.zeros(4)
    for _ in range(60):
        img, boxes, labels = aug(160, rng)
        assert img.shape == (160, 160, 3) and img.dtype == np.uint8
        assert len(boxes) == len(labels)
        if len(boxes):
            assert boxes.min() >= 0 and boxes[:, [0, 2]].max() <= 160 and boxes[:, [1, 3]].max() <= 160
            assert ((boxes[:, 2:] - boxes[:, :2]) >= 3).all()
        np.add.at(seen, labels, 1)
    assert seen[3] > 0.2 * seen[1:].sum()  # one rare face in nine photos, but often seen


@pytest.fixture
def opencv_threads():
    """Restores OpenCV's thread count, which `batch_loader` sets to 1 before it forks workers."""
    import cv2

    n = cv2.getNumThreads()
    yield
    cv2.setNumThreads(n)


def test_batch_stream_is_the_same_with_any_number_of_workers(opencv_threads):
    import cv2

    from maskwatch.train.rfb.loop import BatchStream, batch_loader, make_batch

    rng = np.random.default_rng(0)
    aug = D.Augmenter([_sample(rng, [1, 2]) for _ in range(3)] + [_sample(rng, [3])])
    cv2.setNumThreads(2)
    cv2.resize(np.zeros((512, 512, 3), np.uint8), (300, 300))  # the parent's OpenCV pool is running
    cpu = torch.device("cpu")

    def run(workers, start=0, stop=5):
        stream = BatchStream(lambda r: make_batch(aug, 64, 2, r), seed=7, start=start, stop=stop)
        return list(batch_loader(stream, workers, cpu))

    alone, two = run(0), run(2)  # forked from a process whose OpenCV pool has run
    assert len(alone) == len(two) == 5
    for a, b in zip(alone, two):  # the same batches in step order
        assert all(torch.equal(a[k], b[k]) for k in ("input", "labels", "locs"))
    resumed = run(1, start=3)
    assert len(resumed) == 2 and torch.equal(resumed[0]["input"], alone[3]["input"])
    assert not torch.equal(alone[0]["input"], alone[1]["input"])


def test_default_workers_only_beside_a_gpu():
    from maskwatch.train.rfb.loop import default_workers

    assert default_workers(torch.device("cpu"), cpus=16) == 0
    assert default_workers(torch.device("cuda"), cpus=16) == 15
    assert default_workers(torch.device("cuda"), cpus=64) == 16
    assert default_workers(torch.device("cuda"), cpus=2) == 1


@pytest.fixture(scope="module")
def tiny_rfb_run(tmp_path_factory, tiny_sources, upstream_pth):
    out = tmp_path_factory.mktemp("rfb") / "run"
    names = sorted(p.name for p in (tiny_sources["voc"] / "images").iterdir())
    cfg = RFBConfig(output=str(out), fmd=str(tiny_sources["voc"]), fmd_val=names[:2], pretrained=str(upstream_pth),
                    size=128, batch_size=2, epochs=1, steps_per_epoch=2, warmup_steps=1, min_side=256)
    fit(cfg, progress=False)
    return out, cfg


def test_tiny_run_writes_checkpoints_and_history(tiny_rfb_run):
    out, _ = tiny_rfb_run
    for name in ("config.json", "split.json", "history.json", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1]  # epoch 0: the pretrained network before fine-tuning
    assert np.isfinite(history[1]["loss"]) and "mAP50" in history[1]["fmd"]
    assert json.loads((out / "split.json").read_text())["fmd"]["val"] == _val_names(out)


def _val_names(out):
    return json.loads((out / "config.json").read_text())["fmd_val"]


def test_workers_train_on_the_same_batches(tiny_rfb_run, tmp_path, opencv_threads):
    from dataclasses import replace

    out, cfg = tiny_rfb_run
    fit(replace(cfg, output=str(tmp_path / "run"), workers=2), progress=False)
    alone = json.loads((out / "history.json").read_text())[-1]
    workers = json.loads((tmp_path / "run" / "history.json").read_text())[-1]
    assert workers["loss"] == pytest.approx(alone["loss"], rel=1e-4)
    assert workers["fmd"]["mAP50"] == pytest.approx(alone["fmd"]["mAP50"], abs=1e-3)


def test_resume_continues_from_last_checkpoint(tiny_rfb_run, tmp_path):
    import shutil
    from dataclasses import replace

    out, cfg = tiny_rfb_run
    shutil.copytree(out, tmp_path / "run")
    fit(replace(cfg, output=str(tmp_path / "run"), epochs=2), progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["epoch"] == 2


def test_export_onnx_and_int8_run_as_the_rfb_detector(tiny_rfb_run, tmp_path, tiny_sources):
    from maskwatch import read_image
    from maskwatch.train.rfb.export import export_onnx, quantize
    from maskwatch.datasets import load_voc

    out, cfg = tiny_rfb_run
    info = export_onnx(out / "best.pt", tmp_path / "fp32.onnx")
    assert info["max_abs_diff"] < 1e-4 and info["spec"]["arch"] == "ultralight-rfb-ssd"
    q = quantize(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", load_voc(tiny_sources["voc"]), min_side=256, n=2)
    assert_7_bit_weights(q["path"])
    assert q["size_bytes"] < 3_000_000  # issue 16: the int8 model <= 3 MB
    image = read_image("examples/three_ways.jpg")
    for path in (tmp_path / "fp32.onnx", tmp_path / "int8.onnx"):
        faces = rfb.RFBMaskDetector(model_path=path, score_threshold=0.3).detect(image)
        assert faces.probs is not None and faces.probs.shape[1] == len(LABELS)
        assert len(faces) >= 1  # the face-pretrained network finds a face after two steps


def test_model_runs_on_any_input_size():
    model = RFBDetector(4).eval()
    for h, w in [(97, 131), (240, 320)]:
        with torch.no_grad():
            logits, locs = model(torch.zeros(1, 3, h, w))
        assert logits.shape == (1, len(rfb.priors(h, w)), 4) and locs.shape == (1, len(rfb.priors(h, w)), 4)


def test_from_onnx_rebuilds_the_shipped_network_with_its_batchnorms():
    """The shipped ONNX (BatchNorms folded) back in PyTorch: the same function in eval mode, and in
    train mode on the batch its statistics came from, so fine-tuning continues where it stopped."""
    from maskwatch.onnxmodel import onnx_session
    from maskwatch.registry import resolve
    from maskwatch.train.rfb.model import from_onnx

    onnx_file = resolve("maskwatch-rfb", download=False)
    gen = torch.Generator().manual_seed(0)
    sample = torch.rand(4, 3, 96, 128, generator=gen) * 2 - 1
    model = from_onnx(onnx_file, sample)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 30
    x = torch.rand(1, 3, 120, 160, generator=gen) * 2 - 1
    scores, locs = onnx_session(onnx_file).run(None, {"input": x.numpy()})
    with torch.no_grad():
        probs, got = RFBInference(model.eval())(x)
        assert np.abs(probs.numpy() - scores).max() < 1e-4 and np.abs(got.numpy() - locs).max() < 1e-4
        train_probs, _ = RFBInference(model.train())(sample)
        eval_probs, _ = RFBInference(model.eval())(sample)
    assert float((train_probs - eval_probs).abs().max()) < 1e-3


def test_from_onnx_refuses_another_network(tmp_path):
    from maskwatch.train.rfb.model import from_onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 3))
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(tmp_path / "other.onnx"), dynamo=False)
    with pytest.raises(ValueError, match="not an exported RFB detector"):
        from_onnx(tmp_path / "other.onnx", torch.zeros(1, 3, 16, 16))


def test_fit_continues_from_an_exported_model(tiny_rfb_run, tmp_path):
    """``init``: epoch 0 scores the exported network as it is; training then goes on from it."""
    from dataclasses import replace

    from maskwatch.train.rfb.export import export_onnx

    out, cfg = tiny_rfb_run
    export_onnx(out / "best.pt", tmp_path / "exported.onnx")
    run = fit(replace(cfg, output=str(tmp_path / "again"), init=str(tmp_path / "exported.onnx")), progress=False)
    first = json.loads((out / "history.json").read_text())[-1]["fmd"]
    again = json.loads((run / "history.json").read_text())
    assert again[0]["fmd"]["mAP50"] == pytest.approx(first["mAP50"], abs=0.02)
    assert again[-1]["epoch"] == 1 and np.isfinite(again[-1]["loss"])


def test_train_detector_fine_tunes_the_shipped_model_on_voc_folders(tmp_path, tiny_sources, capsys):
    """`maskwatch train-detector`: the user's folders, the package model as the start, a file that
    `--detector` runs."""
    from maskwatch import load
    from maskwatch.cli import main

    out = tmp_path / "run"
    args = ["train-detector", "--data", str(tiny_sources["voc"]), "-o", str(out), "--epochs", "1", "--steps", "2",
            "--batch-size", "2", "--size", "128", "--val-fraction", "0.5", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("epoch 0: validation mAP@0.5 voc ")  # the package model, before training
    assert printed[-1] == f"use it: maskwatch detect --detector {out / 'maskwatch_rfb.onnx'} PHOTOS"
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1] and np.isfinite(history[1]["loss"])
    split = json.loads((out / "split.json").read_text())["voc"]
    assert split["val"] and split["train"] and not set(split["val"]) & set(split["train"])
    faces = load(detector=str(out / "maskwatch_rfb.onnx")).detect("examples/three_ways.jpg")
    assert len(faces) >= 2  # two steps from the package model: it still finds the faces
    capsys.readouterr()
    assert main(["eval", "--data", str(tiny_sources["voc"]), "--split", str(out / "split.json"), "--detector",
                 str(out / "maskwatch_rfb.onnx"), "-o", str(tmp_path / "ev"), "--no-plots", "--quiet"]) == 0
    report = json.loads((tmp_path / "ev" / "detection_metrics.json").read_text())
    assert report["n_images"] == len(split["val"])  # the run's held-out photos alone

    assert main(args[:1] + ["--data", str(tmp_path)] + args[3:]) == 2  # no annotations/: one line
    assert capsys.readouterr().err.strip() == (f"maskwatch: error: --data {tmp_path}: no annotations/ folder "
                                               "(Pascal VOC: images/ + annotations/)")
