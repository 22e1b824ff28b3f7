"""``maskwatch eval`` end to end on a few fmd images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskwatch.cli import main
from maskwatch.cli.layout import SHARED_LAYOUT
from maskwatch.evaluation import evaluate_dataset
from maskwatch.evaluation.detection import detection_metrics, run_pipeline
from maskwatch.faces import Faces
from maskwatch.labels import LABELS
from maskwatch.datasets import load_voc


def test_cli_eval_writes_json_markdown_and_plots(tmp_path, shared_data, shared_models, capsys):
    pytest.importorskip("matplotlib", reason="the report's plots need the eval extra (matplotlib)")
    out = tmp_path / "ev"
    code = main(["eval", "--data", str(shared_data / "fmd"), "--split", "all", "--limit", "3", "-o", str(out),
                 "--quiet", "--detector", "yunet", "--scale", "1.0"])
    assert code == 0
    m = json.loads((out / "detection_metrics.json").read_text())
    assert m["n_images"] == 3
    for key in ("mAP50", "mAP50_95", "face_AP50", "face_recall", "AP50", "compliance", "by_size", "confusion"):
        assert key in m
    assert 0 <= m["mAP50"] <= 1 and 0 <= m["face_recall"] <= 1
    assert m["latency"]["pipeline"]["n"] == 3
    for png in ("pr_curves", "confusion", "by_size"):
        assert (out / f"detection_{png}.png").stat().st_size > 1000
    lo, hi = m["mAP50_ci95"]
    assert 0 <= lo <= hi <= 1 and set(m["AP50_ci95"]) == set(m["AP50"])
    assert f"{m['mAP50']:.3f} ({lo:.3f}–{hi:.3f})" in (out / "detection_report.md").read_text()
    assert '"mAP50"' in capsys.readouterr().out


class _Oracle:
    """A 'pipeline' that returns the ground truth (optionally with its class shifted)."""

    def __init__(self, images, shift=0):
        self.by_path = {str(im.path): im for im in images}
        self.shift = shift

    def detect(self, image, source=None):
        im = self.by_path[source]
        probs = np.zeros((len(im.boxes), 3), np.float32)
        probs[np.arange(len(im.boxes)), [(LABELS.index(lbl) + self.shift) % 3 for lbl in im.labels]] = 1
        return Faces(xyxy=im.boxes, probs=probs)


def test_perfect_predictions_score_one(shared_data):
    images = load_voc(shared_data / "fmd")[:6]
    m = detection_metrics(run_pipeline(_Oracle(images), images))
    assert m["face_AP50"] == 1.0 and m["face_recall"] == 1.0 and m["face_AP50_95"] == 1.0
    assert all(v in (1.0, None) for v in m["AP50"].values())
    assert m["confusion"]["matched_accuracy"] == 1.0
    assert m["mAP50_ci95"] == [1.0, 1.0]
    wrong = detection_metrics(run_pipeline(_Oracle(images, shift=1), images))
    assert wrong["face_AP50"] == 1.0
    assert all(v in (0.0, None) for v in wrong["AP50"].values())
    assert wrong["confusion"]["matched_accuracy"] == 0.0


def test_evaluate_dataset_python_api(shared_data, shared_models):
    pytest.importorskip("sklearn", reason="the validation split of fmd needs the eval extra (scikit-learn)")
    import maskwatch

    pipe = maskwatch.load("yunet", classifier=None, scale=1.0)
    m = evaluate_dataset(pipe, shared_data / "fmd", split="val", limit=2, layout=SHARED_LAYOUT)
    assert m["split"].startswith("classifier val") and m["n_images"] == 2
    assert "mAP50" not in m and m["face_recall"] is not None  # faces only


def test_evaluation_does_not_import_torch(shared_data):
    pytest.importorskip("sklearn", reason="the validation split of fmd needs the eval extra (scikit-learn)")
    import subprocess
    import sys

    code = ("import sys, maskwatch.cli.eval, maskwatch.evaluation as e; from maskwatch.cli.layout import SHARED_LAYOUT; "
            f"e.load_split({str(shared_data / 'fmd')!r}, 'val', layout=SHARED_LAYOUT); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _one_photo_voc(root, image, box):
    from maskwatch.imageio import write_image

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    write_image(root / "images" / "a.jpg", image)
    x1, y1, x2, y2 = box
    (root / "annotations" / "a.xml").write_text(
        f"<annotation><filename>a.jpg</filename><size><width>{image.shape[1]}</width><height>{image.shape[0]}"
        f"</height></size><object><name>with_mask</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
        f"<ymax>{y2}</ymax></bndbox></object></annotation>")
    return root


@pytest.mark.parametrize("flags", [["--tile", "1024", "--calibrate"], ["--tile", "1024"], []])
def test_eval_calibrates_boxes_once_whatever_the_wrappers(tmp_path, shared_models, astronaut, flags):
    """`eval --detector yunet --tile 1024 --calibrate` calibrated twice (y1 77.8 -> 93.2 on the 512 px
    astronaut, which no tiling touches): the registry applies the calibration once, inside any tiling."""
    data = _one_photo_voc(tmp_path / "voc", astronaut, (1, 1, 11, 11))  # a far-off annotation: the face is a
    # false positive, and its box is in the report

    def face_box(extra, name):
        out = tmp_path / name
        assert main(["eval", "--data", str(data), "--split", "all", "--detector", "yunet", "--classifier", "none",
                     "--score-threshold", "0.5", "--no-plots", "--quiet", "-o", str(out), *extra]) == 0
        (fp,) = json.loads((out / "detection_metrics.json").read_text())["mistakes"]["false_positives"]
        return fp["box"]

    once = face_box(["--calibrate"], "once")
    assert face_box(flags, "other") == once
    assert face_box(["--no-calibrate"], "raw")[1] < once[1] - 5  # calibration does move the box down
