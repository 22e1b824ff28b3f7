"""The YuNet candidate's training side: the port of the published weights, the class head, SimOTA,
a tiny run through the shared loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from maskwatch.detectors import yunetmask
from maskwatch.labels import LABELS
from maskwatch.train.rfb.loop import RFBConfig, fit, load_checkpoint
from maskwatch.train.yunet.loop import YUNET, TorchYuNet
from maskwatch.train.yunet.loss import simota, yunet_loss
from maskwatch.train.yunet.model import YuNet, YuNetInference, init_from_upstream, load_upstream


@pytest.fixture(scope="module")
def yunet_pth(shared_models):
    path = shared_models / "yunet_s.pth"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def bgr_640():
    import cv2

    from maskwatch import read_image

    image = cv2.resize(read_image("examples/three_ways.jpg"), (640, 640))
    return image, torch.from_numpy(yunetmask.to_input(image))


def test_port_matches_the_official_onnx_on_a_real_photo(yunet_pth, bgr_640, shared_models):
    """strict=True load, then all twelve outputs of OpenCV's YuNet ONNX (cls/obj/bbox/kps x 3 strides)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(shared_models / "face_detection_yunet_2023mar.onnx"),
                                providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"input": bgr_640[1].numpy()})
    with torch.no_grad():
        got = [t.numpy() for t in load_upstream(yunet_pth)(bgr_640[1])]
    assert [o.name for o in sess.get_outputs()][:3] == ["cls_8", "cls_16", "cls_32"]
    for a, b in zip(got, ref):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    assert max(float(c.max()) for c in got[:3]) > 0.8  # it does see the faces


def test_both_published_sizes_load_strictly(shared_models):
    for name, size in (("yunet_s.pth", "s"), ("yunet_n.pth", "n")):
        if not (shared_models / name).is_file():
            pytest.skip(f"{name} not found")
        assert load_upstream(shared_models / name).size == size


def test_decoder_gives_opencvs_faces_with_the_upstream_network(yunet_pth, shared_models):
    """The NumPy decoding (points, strides, padding) on the face-only network = cv2.FaceDetectorYN."""
    import cv2

    from maskwatch import read_image
    from maskwatch.spec import ModelSpec

    net = load_upstream(yunet_pth)

    class FaceOnly(yunetmask.YuNetMaskDecoder):
        def forward(self, x):
            with torch.no_grad():
                cls, obj, box, _ = net.raw_forward(torch.from_numpy(x))
            score = torch.sqrt(cls[..., 0].sigmoid() * obj.sigmoid()).numpy()
            return score, np.full(score.shape + (3,), 1 / 3, np.float32), box.numpy()

    image = read_image("examples/three_ways.jpg")  # 642 x 238: padded to 672 x 256
    spec = ModelSpec(kind="detector", labels=LABELS, input_size=640, arch=yunetmask.ARCH)
    ours = FaceOnly(spec, score_threshold=0.5, nms_threshold=0.3)(image)
    cv = cv2.FaceDetectorYN.create(str(shared_models / "face_detection_yunet_2023mar.onnx"), "",
                                   (image.shape[1], image.shape[0]), 0.5, 0.3, 5000)
    _, rows = cv.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    order = np.argsort(rows[:, 0])
    ref = np.concatenate([rows[order, :2], rows[order, :2] + rows[order, 2:4]], 1)
    got = ours.xyxy[np.argsort(ours.xyxy[:, 0])]
    assert len(got) == len(ref) == 3
    np.testing.assert_allclose(got, ref, atol=0.05)
    np.testing.assert_allclose(np.sort(ours.det_score), np.sort(rows[:, 14]), atol=1e-4)


def test_class_head_starts_from_the_face_channel(yunet_pth, bgr_640):
    up = load_upstream(yunet_pth)
    new = init_from_upstream(yunet_pth, LABELS).eval()
    with torch.no_grad():
        c_up, o_up, b_up, _ = up.raw_forward(bgr_640[1])
        c_new, o_new, b_new, _ = new.raw_forward(bgr_640[1])
        score, probs, _ = YuNetInference(new)(bgr_640[1])
    torch.testing.assert_close(b_new, b_up)
    torch.testing.assert_close(o_new, o_up)
    for k in range(c_new.shape[-1]):
        torch.testing.assert_close(c_new[..., k], c_up[..., 0])
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / 3))  # no label known yet
    torch.testing.assert_close(score, torch.sqrt(c_up[..., 0].sigmoid() * o_up.sigmoid()))


def test_simota_assigns_points_near_each_face_and_none_to_empty_images():
    pts = torch.from_numpy(np.array(yunetmask.points(128, 128)))
    gt = torch.tensor([[10.0, 10.0, 40.0, 44.0], [80.0, 70.0, 120.0, 118.0]])
    pred = torch.cat([pts[:, :2] - 16, pts[:, :2] + 16], 1)  # 32-px boxes around every point
    face, iou = simota(pred, torch.full((len(pts),), 0.5), pts, gt)
    for j, (x1, y1, x2, y2) in enumerate(gt.tolist()):
        mine = pts[face == j]
        assert len(mine) >= 1
        assert ((mine[:, 0] > x1 - 2.5 * mine[:, 2]) & (mine[:, 0] < x2 + 2.5 * mine[:, 2])).all()
    assert (iou[face >= 0] > 0).all() and (iou[face < 0] == 0).all()
    none, _ = simota(pred, torch.full((len(pts),), 0.5), pts, torch.zeros(0, 4))
    assert (none == -1).all()


def test_loss_falls_when_fitting_one_batch():
    torch.manual_seed(0)
    model = YuNet("s", 4)
    x = torch.rand(2, 3, 96, 96) * 255
    pts = torch.from_numpy(np.array(yunetmask.points(96, 96)))
    boxes = [torch.tensor([[20.0, 20.0, 60.0, 66.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([3]), torch.zeros(0, dtype=torch.long)]
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(30):
        cls, obj, box, _ = model.raw_forward(x)
        parts = yunet_loss(cls, obj, box, pts, boxes, labels)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(float(parts["loss"].detach()))
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_tiny_run_through_the_shared_loop(tmp_path, tiny_sources, yunet_pth):
    names = sorted(p.name for p in (tiny_sources["voc"] / "images").iterdir())
    cfg = RFBConfig(output=str(tmp_path / "run"), fmd=str(tiny_sources["voc"]), fmd_val=names[:2],
                    pretrained=str(yunet_pth), size=128, batch_size=2, epochs=1, steps_per_epoch=2,
                    warmup_steps=1, min_side=256)
    out = fit(cfg, progress=False, recipe=YUNET)
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1] and np.isfinite(history[1]["loss"])
    assert history[0]["fmd"]["face_recall"] > 0.5  # the face-pretrained network finds faces before fine-tuning
    model, spec, _ = load_checkpoint(out / "best.pt", YUNET)
    assert spec.arch == yunetmask.ARCH and isinstance(model, YuNet)
    from maskwatch import read_image

    faces = TorchYuNet(model, spec, score_threshold=0.3).detect(read_image("examples/three_ways.jpg"))
    assert len(faces) >= 1 and faces.probs.shape[1] == len(LABELS)
