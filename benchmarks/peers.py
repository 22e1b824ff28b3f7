"""The published face-mask detectors in ../shared/peers as `Faces` producers, for side-by-side runs.

Each peer is decoded as its own documentation says (../shared/data/README.md, "Peers"): input size,
normalisation, anchors, thresholds and NMS. Their classes map onto maskwatch's labels as
Mask / masked_face -> with_mask and NoMask / face -> without_mask; none has an incorrect-wear class
(its probability is 0). Peers are other projects' models: read in place, never committed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskwatch import ops
from maskwatch.faces import Faces
from maskwatch.labels import LABELS, WITH_MASK, WITHOUT_MASK

MASK, NO_MASK = LABELS.index(WITH_MASK), LABELS.index(WITHOUT_MASK)


def _faces(xyxy: np.ndarray, score: np.ndarray, p_mask: np.ndarray, w: int, h: int) -> Faces:
    probs = np.zeros((len(score), len(LABELS)), np.float32)
    probs[:, MASK], probs[:, NO_MASK] = p_mask, 1 - p_mask
    xyxy = ops.clip_boxes(np.asarray(xyxy, np.float32).reshape(-1, 4), w, h)
    keep = ops.box_area(xyxy) > 0
    return Faces(xyxy=xyxy[keep], det_score=np.asarray(score, np.float32)[keep], probs=probs[keep], image_size=(w, h))


class UltraLightPeer:
    """Ultra-Light-Fast RFB-640 masked-face: RGB, (x - 127) / 128 at 640x480, per-class NMS (IoU 0.3)."""

    name = "ultralight RFB-640"

    def __init__(self, path: Path, score_threshold: float = 0.5):
        from maskwatch.onnxmodel import onnx_session

        self.session = onnx_session(path)
        self.input = self.session.get_inputs()[0].name
        self.score_threshold = score_threshold

    def detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        x = ((cv2.resize(image, (640, 480)).astype(np.float32) - 127) / 128).transpose(2, 0, 1)[None]
        scores, boxes = self.session.run(None, {self.input: x})
        scores, boxes = scores[0], boxes[0] * np.float32([w, h, w, h])
        out_boxes, out_scores, out_mask = [], [], []
        for c in (1, 2):  # face, masked_face
            idx = np.nonzero(scores[:, c] > self.score_threshold)[0]
            keep = idx[ops.nms(boxes[idx], scores[idx, c], 0.3)] if len(idx) else idx
            out_boxes.append(boxes[keep])
            out_scores.append(scores[keep, c])
            out_mask.append(scores[keep, 2] / np.maximum(scores[keep, 1] + scores[keep, 2], 1e-9))
        return _faces(np.concatenate(out_boxes), np.concatenate(out_scores), np.concatenate(out_mask), w, h)


def aizoo_anchors() -> np.ndarray:
    """AIZOO's anchors (utils/anchor_generator.py): corners, (5972, 4)."""
    maps = (33, 17, 9, 5, 3)
    sizes = ((0.04, 0.056), (0.08, 0.11), (0.16, 0.22), (0.32, 0.45), (0.64, 0.72))
    ratios = (1.0, 0.62, 0.42)
    out = []
    for fm, (s0, s1) in zip(maps, sizes):
        c = (np.arange(fm) + 0.5) / fm
        cx, cy = np.meshgrid(c, c)
        wh = [(s * np.sqrt(ratios[0]), s / np.sqrt(ratios[0])) for s in (s0, s1)]
        wh += [(s0 * np.sqrt(r), s0 / np.sqrt(r)) for r in ratios[1:]]
        per = [np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) for w, h in wh]
        out.append(np.stack(per, 2).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


class AizooPeer:
    """AIZOO FaceMaskDetection SSD: RGB / 255 at 260x260, variances .1/.2, one NMS over both classes (IoU 0.4)."""

    name = "AIZOO SSD 260"

    def __init__(self, prototxt: Path, caffemodel: Path, score_threshold: float = 0.5):
        self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.anchors = aizoo_anchors()
        self.score_threshold = score_threshold

    def detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        self.net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, (260, 260)))
        outs = self.net.forward(self.outputs)
        loc = next(o for o in outs if o.shape[-1] == 4)[0]
        cls = next(o for o in outs if o.shape[-1] == 2)[0]
        a = self.anchors
        aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        acx, acy = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
        r = loc * np.float32([0.1, 0.1, 0.2, 0.2])
        cx, cy = r[:, 0] * aw + acx, r[:, 1] * ah + acy
        bw, bh = np.exp(r[:, 2]) * aw, np.exp(r[:, 3]) * ah
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * np.float32([w, h, w, h])
        score = cls.max(1)
        idx = np.nonzero(score > self.score_threshold)[0]
        keep = idx[ops.nms(boxes[idx], score[idx], 0.4)] if len(idx) else idx
        return _faces(boxes[keep], score[keep], cls[keep, 0] / np.maximum(cls[keep].sum(1), 1e-9), w, h)


class TutorialPeer:
    """The classic tutorial: OpenCV res10 SSD faces (300x300, score > 0.5) + the Keras MobileNetV2
    classifier (224x224 crops, x / 127.5 - 1, NHWC; [p_mask, p_no_mask])."""

    name = "tutorial res10 + Keras"

    def __init__(self, keras_onnx: Path, models: Path, score_threshold: float = 0.5):
        from maskwatch.onnxmodel import onnx_session

        self.ssd = cv2.dnn.readNetFromCaffe(str(models / "res10_deploy.prototxt"),
                                            str(models / "res10_300x300_ssd_iter_140000.caffemodel"))
        self.clf = onnx_session(keras_onnx)
        self.input = self.clf.get_inputs()[0].name
        self.score_threshold = score_threshold

    def detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        self.ssd.setInput(cv2.dnn.blobFromImage(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 1.0, (300, 300),
                                                (104.0, 177.0, 123.0)))
        det = self.ssd.forward()[0, 0]
        det = det[det[:, 2] > self.score_threshold]
        xyxy = ops.clip_boxes(det[:, 3:7] * np.float32([w, h, w, h]), w, h)
        if not len(xyxy):
            return _faces(xyxy, det[:, 2], np.zeros(0, np.float32), w, h)
        crops = ops.crop_faces(image, xyxy, 224, 0.0)
        p = self.clf.run(None, {self.input: crops.astype(np.float32) / 127.5 - 1})[0]
        return _faces(xyxy, det[:, 2], p[:, 0], w, h)


def available(shared: Path, score_threshold: float = 0.5) -> dict[str, object]:
    """The peers found under ``shared`` (peers/ and models/), by name."""
    peers, models = shared / "peers", shared / "models"
    out: dict[str, object] = {}
    if (peers / "aizoo_face_mask_detection.caffemodel").is_file():
        out[AizooPeer.name] = AizooPeer(peers / "aizoo_face_mask_detection.prototxt",
                                        peers / "aizoo_face_mask_detection.caffemodel", score_threshold)
    if (peers / "ultralight_RFB-640-masked_face-v2.onnx").is_file():
        out[UltraLightPeer.name] = UltraLightPeer(peers / "ultralight_RFB-640-masked_face-v2.onnx", score_threshold)
    if (peers / "chandrikadeb_mask_detector.onnx").is_file() and (models / "res10_deploy.prototxt").is_file():
        out[TutorialPeer.name] = TutorialPeer(peers / "chandrikadeb_mask_detector.onnx", models, score_threshold)
    return out
