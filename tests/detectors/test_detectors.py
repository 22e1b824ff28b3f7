import numpy as np
import pytest

from maskwatch import Faces, UnknownNameError, create_detector, detector_names, registry
from maskwatch.ops import box_iou


@pytest.mark.parametrize("name", ["yunet", "ssd", "haar"])
def test_each_detector_finds_the_astronaut(shared_models, astronaut, astronaut_face, name):
    faces = create_detector(name).detect(astronaut)
    assert isinstance(faces, Faces)
    assert faces.image_size == (512, 512)
    assert len(faces) >= 1
    best = faces[int(faces.det_score.argmax())]
    assert box_iou(best.xyxy, [astronaut_face])[0, 0] > 0.6
    assert np.all(faces.det_score > 0) and np.all(faces.det_score <= 1)


def test_yunet_landmarks_lie_in_the_face(shared_models, astronaut, astronaut_face):
    faces = create_detector("yunet").detect(astronaut)
    x1, y1, x2, y2 = astronaut_face
    lms = faces.landmarks[0]
    assert lms.shape == (5, 2)
    assert np.all((lms[:, 0] > x1) & (lms[:, 0] < x2) & (lms[:, 1] > y1) & (lms[:, 1] < y2))
    assert lms[0, 0] < lms[1, 0]  # right eye (image left) before left eye


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_scale_keeps_boxes_in_input_coordinates(shared_models, astronaut, astronaut_face, scale):
    faces = create_detector("yunet", scale=scale).detect(astronaut)
    assert box_iou(faces.xyxy[:1], [astronaut_face])[0, 0] > 0.6


def test_blank_image_has_no_faces(shared_models):
    for name in detector_names():
        if name == "maskwatch" and registry.find("maskwatch-detector") is None:
            continue  # trained model not installed (scripts/build_detector.py --install)
        faces = create_detector(name).detect(np.zeros((240, 320, 3), np.uint8))
        assert len(faces) == 0 and faces.image_size == (320, 240)


def test_unknown_detector_and_bad_arguments(shared_models):
    with pytest.raises(UnknownNameError, match="unknown detector 'nope'; choose one of"):
        create_detector("nope")
    with pytest.raises(ValueError, match="scale must be > 0"):
        create_detector("yunet", scale=0)


def test_detector_rejects_non_rgb(shared_models):
    from maskwatch import ImageReadError

    with pytest.raises(ImageReadError, match="RGB uint8"):
        create_detector("haar").detect(np.zeros((10, 10), np.uint8))


def test_small_faces_need_upscaling(shared_models, astronaut):
    """Why the scale option exists: a 16 px face is missed at scale 1 and found at scale 2."""
    import cv2

    small = cv2.resize(astronaut, (90, 90), interpolation=cv2.INTER_AREA)  # face about 17 px
    canvas = np.full((240, 320, 3), 127, np.uint8)
    canvas[60:150, 100:190] = small
    at1 = len(create_detector("yunet", scale=1.0).detect(canvas))
    at3 = len(create_detector("yunet", scale=3.0).detect(canvas))
    assert at3 >= 1 and at3 >= at1


def test_yunet_drops_non_finite_rows(shared_models, astronaut):
    """OpenCV's YuNet returns NaN boxes on some close-up photos; they must not reach `Faces`."""
    det = create_detector("yunet")
    real = det._net.detect

    def with_nan(image):
        n, rows = real(image)
        bad = rows[:1].copy()
        bad[0, 2] = np.nan
        return n, np.concatenate([rows, bad])

    det._net = type("Net", (), {"detect": staticmethod(with_nan), "setInputSize": det._net.setInputSize})()
    faces = det.detect(astronaut)
    assert len(faces) == 1 and np.isfinite(faces.xyxy).all()


@pytest.mark.parametrize(("size", "kw", "expected"), [
    ((400, 300), {"min_side": 640}, 1.6),
    ((100, 100), {"min_side": 640}, 6.4),
    ((100, 100), {"min_side": 640, "max_upscale": 2.0}, 2.0),
    ((400, 300), {"min_side": 640, "max_upscale": 2.0}, 1.6),  # below the cap: as without it
    ((100, 100), {"scale": 3.0, "min_side": 640, "max_upscale": 2.0}, 3.0),  # an explicit scale is honoured
    ((5000, 100), {"min_side": 640, "max_upscale": 2.0}, 4096 / 5000),  # max_side still wins
])
def test_input_scale_upscales_small_images_at_most_max_upscale(size, kw, expected):
    from maskwatch.detectors.base import FaceDetector

    class Probe(FaceDetector):
        def _detect(self, image):
            raise AssertionError("not called")

    assert Probe(**kw).input_scale(*size) == pytest.approx(expected)


def test_registry_scale_drops_the_measured_upscaling():
    from maskwatch.detectors.registry import build

    assert build("rfb").describe()["max_upscale"] == 2.0
    plain = build("rfb", scale=1.0).describe()
    assert plain["min_side"] == 0 and "max_upscale" not in plain


def test_rfb_finds_one_face_in_small_closeups(shared_data):
    """100-px fm12k close-ups: upscaled 6.4x they gave about two false faces each; capped at 2x, one face."""
    from maskwatch import read_image
    from maskwatch.detectors.registry import build
    from maskwatch.evaluation.closeups import BENCHMARK_PER_CLASS, closeup_files

    files = [f for f, _ in closeup_files(shared_data / "crops", BENCHMARK_PER_CLASS) if "/fm12k/" in str(f)][:20]
    if not files:
        pytest.skip("no fm12k close-ups in the shared data")
    det = build("rfb")
    counts = [len(det(read_image(f))) for f in files]
    assert sum(max(0, c - 1) for c in counts) / len(counts) <= 0.3
    assert sum(c >= 1 for c in counts) >= 0.8 * len(counts)  # and the face itself is still found


def test_an_exported_detector_file_runs_as_its_archs_entry(tmp_path):
    from maskwatch import ModelSpecError, load
    from maskwatch.detectors import resolve

    shipped = registry.resolve("maskwatch-rfb")
    copy = tmp_path / "my_detector.onnx"  # what `maskwatch train-detector` leaves in its run folder
    copy.write_bytes(shipped.read_bytes())
    assert resolve("rfb") == ("rfb", {})
    assert resolve(str(copy)) == ("rfb", {"model_path": str(copy)})
    for preset in ("photo", "video"):  # the file gets the entry's measured settings, the classifier too
        mine, ours = load(detector=str(copy), preset=preset), load(preset=preset)
        assert mine.describe()["detector"] == {**ours.describe()["detector"], "model": "my_detector.onnx"}
        assert (mine.describe()["classifier"] or {}).get("below") == (ours.describe()["classifier"] or {}).get("below")
    faces = load(detector=str(copy)).detect("examples/three_ways.jpg")
    assert sorted(faces.label) == ["mask_worn_incorrectly", "with_mask", "without_mask"]
    with pytest.raises(UnknownNameError, match="nor an exported detector"):
        resolve(str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelSpecError, match="expected 'detector'"):
        resolve(str(registry.resolve("mask-classifier")))
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ModelSpecError, match="not an ONNX model"):
        resolve(str(tmp_path / "notes.onnx"))
