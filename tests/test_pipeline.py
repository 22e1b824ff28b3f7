import json

import numpy as np
import pytest

import maskwatch
from maskwatch import LABELS, Faces, ImageReadError, MaskClassifier
from maskwatch.ops import box_iou

from badinputs import exif_rotated, write_jpeg

#: rfb's measured photo threshold (its registry entry)
SCORE = 0.3


@pytest.fixture(scope="module")
def pipe(shared_models):
    return maskwatch.load("yunet+maskwatch")  # the three-network stack (the default is tested below)


def _detector(pipe):
    return pipe._detector  # the structure maskwatch.load built (tests only; describe() is the public view)


def test_load_defaults(pipe):
    from maskwatch.detectors import Calibrated, Ensemble, entry
    from maskwatch.detectors.maskwatch import MaskwatchDetector

    ens = _detector(pipe)
    assert ens.name == "yunet+maskwatch" and isinstance(ens, Ensemble)
    yunet, ours = ens.detectors
    assert yunet.name == "yunet" and isinstance(yunet, Calibrated) and isinstance(ours, MaskwatchDetector)
    assert yunet.calibration == entry("yunet").calibration
    yunet = yunet.detector
    assert (yunet.scale, yunet.min_side, yunet.score_threshold) == (1.0, 800, 0.02)
    assert (ours.scale, ours.min_side, ours.score_threshold) == (1.0, 640, 0.3)
    assert ens.weights == [0.7, 1.0] and ens.solo_thresholds == [0.2, 0.5]
    assert yunet.input_scale(400, 300) == 2.0 and yunet.input_scale(480, 640) == 1.25
    assert yunet.input_scale(3000, 4000) == 1.0
    assert not isinstance(_detector(maskwatch.load("yunet+maskwatch", calibrate=False)).detectors[0], Calibrated)
    alone = _detector(maskwatch.load("yunet"))  # a member alone: its measured settings, calibrated
    assert isinstance(alone, Calibrated) and (alone.detector.min_side, alone.detector.score_threshold) == (800, 0.2)
    explicit = _detector(maskwatch.load("yunet+maskwatch", scale=2.0, score_threshold=0.5)).detectors
    assert [(d.scale, d.min_side, d.score_threshold) for d in (explicit[0].detector, explicit[1])] == [(2.0, 0, 0.5)] * 2
    fast = _detector(maskwatch.load("maskwatch", scale=0.8, min_side=512))  # an explicit min_side stays
    assert (fast.scale, fast.min_side) == (0.8, 512) and fast.input_scale(480, 640) == 0.8
    assert fast.input_scale(300, 400) == 512 / 400
    both = [d.describe() for d in _detector(maskwatch.load("yunet+maskwatch", scale=0.8, min_side=512)).detectors]
    assert [(d["scale"], d["min_side"]) for d in both] == [(0.8, 512)] * 2
    assert pipe.classifies and isinstance(pipe._classifier, MaskClassifier)
    described = pipe.describe()
    assert described["classifier"]["model_labels"] == list(LABELS)
    assert described["detector"]["name"] == "yunet+maskwatch" and described["detector"]["score_threshold"] == 0.2


def test_default_is_the_detector_shipped_in_the_package_then_the_classifier(monkeypatch):
    """Issue 16: the network shipped in the package, no model to download; photos get the crop
    classifier behind it (its probabilities averaged with the detector's), video one pass."""
    from maskwatch.detectors.rfb import RFBMaskDetector
    from maskwatch.presets import PRESETS
    from maskwatch.registry import PACKAGE_MODELS

    monkeypatch.delenv("MASKWATCH_MODELS", raising=False)
    pipe = maskwatch.load()
    det = _detector(pipe)
    assert PRESETS["photo"].detector == det.name == "rfb" and isinstance(det, RFBMaskDetector)
    assert det.path.parent == PACKAGE_MODELS and pipe._classifier.path.parent == PACKAGE_MODELS
    assert pipe.classifies and (pipe.classifier_weight, pipe.classifier_below) == (0.5, 0.9)
    assert {k: pipe.describe()["classifier"][k] for k in ("weight", "below")} == {"weight": 0.5, "below": 0.9}
    assert (det.scale, det.min_side, det.max_upscale, det.score_threshold) == (1.0, 640, 2.0, SCORE)
    assert det.input_scale(300, 400) == 1.6 and det.input_scale(1080, 1920) == 1.0 and det.input_scale(100, 100) == 2.0
    assert maskwatch.load("rfb").classifier_weight == 0.5 and maskwatch.load(preset="api").classifier_weight == 0.5
    one = maskwatch.load(classifier=None)  # the same detector alone, in one pass
    assert not one.classifies and _detector(one).name == "rfb"
    asked = maskwatch.load(classifier="default")  # asked for: the classifier's labels alone, on every face
    assert (asked.classifier_weight, asked.classifier_below) == (1.0, 1.0)
    assert not maskwatch.load(preset="video").classifies and maskwatch.load("haar").classifies
    assert maskwatch.load("haar").classifier_weight == 1.0  # a face-only detector has no probabilities to average


def test_classifier_weight_averages_the_detectors_probabilities(astronaut):
    from maskwatch.classifier import MaskClassifier

    det = maskwatch.load(classifier=None)._detector
    clf = MaskClassifier()
    faces = maskwatch.Pipeline(det, None).detect(astronaut)
    assert len(faces) and faces.probs is not None
    alone = maskwatch.Pipeline(det, clf).detect(astronaut)
    mixed = maskwatch.Pipeline(det, clf, classifier_weight=0.7).detect(astronaut)
    np.testing.assert_allclose(mixed.probs, 0.7 * alone.probs + 0.3 * faces.probs, atol=1e-6)
    assert not np.allclose(alone.probs, faces.probs)  # the two networks disagree somewhere, so the mix matters
    with pytest.raises(ValueError, match="classifier_weight"):
        maskwatch.Pipeline(det, clf, classifier_weight=1.5)
    with pytest.raises(ValueError, match="classifier_below"):
        maskwatch.Pipeline(det, clf, classifier_below=0)


def test_classifier_below_asks_only_about_the_less_certain_faces(astronaut):
    """A second opinion where the detector is unsure: sure faces keep the detector's probabilities,
    the others get the mix; the classifier sees only those."""
    from maskwatch.classifier import MaskClassifier

    det = maskwatch.load(classifier=None)._detector
    image = np.concatenate([astronaut, astronaut[:, ::-1]], 1)  # two faces
    faces = maskwatch.Pipeline(det, None).detect(image)
    conf = faces.probs.max(1)
    assert len(faces) >= 2
    below = float(np.sort(conf)[-1])  # the surest face stays the detector's, the others are asked
    seen = []

    class Counting(MaskClassifier):
        def classify(self, image, faces):
            seen.append(len(faces))
            return super().classify(image, faces)

    clf = Counting()
    alone = maskwatch.Pipeline(det, clf).detect(image)
    mixed = maskwatch.Pipeline(det, clf, classifier_weight=0.5, classifier_below=below).detect(image)
    asked = conf < below
    assert seen == [len(faces), int(asked.sum())]
    np.testing.assert_allclose(mixed.probs[~asked], faces.probs[~asked])
    np.testing.assert_allclose(mixed.probs[asked], 0.5 * alone.probs[asked] + 0.5 * faces.probs[asked], atol=1e-6)
    sure = maskwatch.Pipeline(det, clf, classifier_below=float(conf.min()) / 2)  # nobody is asked
    seen.clear()
    np.testing.assert_allclose(sure.detect(image).probs, faces.probs)
    assert seen == []


def test_presets_pick_the_detector_and_its_settings(shared_models):
    from maskwatch.presets import PRESETS

    for name in ("video", "api"):
        d = maskwatch.load(preset=name).describe()["detector"]
        assert PRESETS[name].detector == d["name"] == "rfb" and d["min_side"] == 640
    assert maskwatch.load(preset="video").describe()["detector"]["score_threshold"] == 0.5  # the video preset's own
    assert maskwatch.load(preset="video", score_threshold=0.4).describe()["detector"]["score_threshold"] == 0.4
    assert maskwatch.load(preset="api").describe()["detector"]["score_threshold"] == SCORE
    assert maskwatch.load("yunet", classifier=None).describe()["detector"]["min_side"] == 800  # its own measured one
    # a preset's settings are its own detector's: another detector keeps its measured ones
    assert maskwatch.load("maskwatch", preset="video", classifier=None).describe()["detector"]["min_side"] == 640
    with pytest.raises(maskwatch.UnknownNameError, match="unknown preset"):
        maskwatch.load(preset="nope")


def test_detect_array_end_to_end(pipe, astronaut, astronaut_face):
    faces = pipe.detect(astronaut)
    faces = faces[faces.det_score >= 0.5]  # the default threshold (0.2) favours recall in crowds
    assert len(faces) == 1
    assert box_iou(faces.xyxy, [astronaut_face])[0, 0] > 0.6
    assert faces.label == ["without_mask"]
    np.testing.assert_allclose(faces.probs.sum(1), 1.0, atol=1e-4)
    d = faces.to_dict()
    assert (d["width"], d["height"]) == (512, 512)
    json.dumps(d)  # JSON-serialisable


def test_detect_path_records_source(pipe, astronaut, tmp_path):
    path = write_jpeg(tmp_path / "astro.jpg", astronaut)
    faces = pipe.detect(path)
    assert faces.source == str(path) and (faces.det_score >= 0.5).sum() == 1


def test_masked_faces_are_recognised(pipe, shared_data):
    """Real crowd photos of the fmd set: most annotated masked faces come out as with_mask."""
    from maskwatch.datasets import load_voc

    images = [im for im in load_voc(shared_data / "fmd")[:40] if im.labels.count("with_mask") >= 3][:5]
    hits = total = 0
    for im in images:
        faces = pipe.detect(im.path)
        iou = box_iou(im.boxes, faces.xyxy)
        for gi, label in enumerate(im.labels):
            if label == "with_mask" and iou.shape[1] and iou[gi].max() > 0.3:
                total += 1
                hits += faces.label[int(iou[gi].argmax())] == "with_mask"
    assert total >= 5
    assert hits / total >= 0.8


def test_exif_rotated_photo_is_detected_upright(pipe, astronaut, astronaut_face, tmp_path):
    pytest.importorskip("PIL", reason="Pillow (test extra) writes the EXIF tag")
    upright = np.full((512, 700, 3), 90, np.uint8)
    upright[:, :512] = astronaut
    faces = pipe.detect(exif_rotated(tmp_path / "phone.jpg", upright))
    assert faces.image_size == (700, 512)
    assert box_iou(faces.xyxy, [astronaut_face]).max() > 0.6


def test_min_face_filters_small_faces(shared_models, astronaut):
    assert len(maskwatch.load(min_face=300).detect(astronaut)) == 0
    assert len(maskwatch.load(min_face=50).detect(astronaut)) >= 1


def test_detector_only_pipeline(shared_models, astronaut, astronaut_face):
    faces = maskwatch.load("yunet", classifier=None, score_threshold=0.5).detect(astronaut)
    assert len(faces) == 1 and faces.probs is None
    faces = maskwatch.load("yunet+maskwatch", classifier=None).detect(astronaut)  # YuNet's faces have no classes
    assert faces.probs is None and box_iou(faces.xyxy[faces.det_score.argmax()][None], [astronaut_face])[0, 0] > 0.6


def test_bad_path_raises_typed_error(pipe, tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        pipe.detect(tmp_path / "nope.jpg")


def test_annotate_draws_in_label_colour(pipe, astronaut):
    faces = pipe.detect(astronaut)
    out = maskwatch.annotate(astronaut, faces)
    assert out.shape == astronaut.shape and out is not astronaut
    x1, y1, x2, y2 = np.round(faces.xyxy[0]).astype(int)
    colour = maskwatch.labels.COLORS[faces.label[0]]
    edge = out[(y1 + y2) // 2, x1]
    assert np.abs(edge.astype(int) - colour).max() < 40
    assert np.array_equal(maskwatch.annotate(astronaut, Faces.empty()), astronaut)


def test_blur_hides_the_face(pipe, astronaut):
    faces = pipe.detect(astronaut)
    blurred = maskwatch.BlurAnnotator().annotate(astronaut, faces)
    x1, y1, x2, y2 = np.round(faces.xyxy[0]).astype(int)
    face_before = astronaut[y1:y2, x1:x2].astype(float)
    face_after = blurred[y1:y2, x1:x2].astype(float)
    assert np.abs(np.diff(face_after, axis=1)).mean() < 0.5 * np.abs(np.diff(face_before, axis=1)).mean()


def test_classifier_on_crops(shared_models, shared_data):
    clf = MaskClassifier()
    wm = sorted((shared_data / "crops" / "maskedface-net" / "with_mask").glob("*.jpg"))[:10]
    wo = sorted((shared_data / "crops" / "fm12k" / "without_mask").glob("*.jpg"))[:10]
    for files, label in ((wm, "with_mask"), (wo, "without_mask")):
        probs = np.stack([clf.classify_image(maskwatch.read_image(f)) for f in files])
        assert (probs.argmax(1) == LABELS.index(label)).mean() >= 0.8
    assert clf.predict_crops(np.zeros((0, 128, 128, 3), np.uint8)).shape == (0, 3)
