"""Two-stage refinements of a pipeline, each measured on the fmd validation split.

    MASKWATCH_MODELS=../shared/models python benchmarks/bench_refinements.py --shared ../shared [--detector maskwatch]

For the pipeline ``maskwatch.load(detector)`` (its defaults), one knob at a time:

* **minimum face size** (``min_face``): drop faces whose shorter side is below N px;
* **classifier crop margin**: context around the face box in the classifier's crop (the model was
  trained with the margin in its spec);
* **ensemble merging** (the default ensemble only): the IoU above which two members' faces are one
  face (NMS), the IoU from which boxes vote, and the members' agreement rule (solo thresholds)
  against plain per-member thresholds; with the false faces found on 240 close-up photos of other
  datasets (as in bench_detect.py) and mAP / face recall on the tiling mosaics below;
* **class source**: the classifier's probabilities (two passes), its most probable class alone (every
  face scored by the detector), and the ceiling: each face labelled by the annotation it matches
  (IoU >= 0.3; the classifier's class elsewhere), to show what classification costs; for maskwatch's
  own detector also its one-pass class probabilities and the mean of both;
* **tiling** on large photos: the validation photos pasted at native resolution into 3x3 mosaics
  (about 1200-2400 px wide, 9 photos' faces each), each detector with and without
  `maskwatch.detectors.Tiled`; ms per mosaic (median, same process, one after the other).

Writes benchmarks/results/refinements.json and a section of docs/detection.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("mAP50", "mAP50_95", "face_AP50", "face_recall", "AP50")


def summary(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: m.get(k) for k in KEYS}
    out["pipeline_ms"] = (m.get("latency", {}).get("pipeline") or {}).get("median_ms")
    return out


class MeanProbs:
    """Classifier stand-in: the mean of the detector's own class probabilities and the classifier's."""

    def __init__(self, classifier: Any, weight: float = 0.5):
        self.classifier, self.weight, self.path = classifier, weight, classifier.path

    def classify(self, image: np.ndarray, faces: Any) -> Any:
        own = faces.probs
        faces = self.classifier.classify(image, faces)
        if own is None or not len(faces):
            return faces
        return faces.with_probs(self.weight * own + (1 - self.weight) * faces.probs)


class OneHot:
    """Classifier stand-in: each face gets the classifier's most probable class with probability 1 (so
    it is scored by the detector alone), or, with ``annotations`` (image content hash -> VocImage), the
    label of the annotation it overlaps most at IoU >= ``iou`` where there is one."""

    def __init__(self, classifier: Any, annotations: dict[str, Any] | None = None, iou: float = 0.3):
        self.classifier, self.annotations, self.iou, self.path = classifier, annotations, iou, classifier.path

    def classify(self, image: np.ndarray, faces: Any) -> Any:
        from maskwatch import ops
        from maskwatch.labels import LABELS

        faces = self.classifier.classify(image, faces)
        if not len(faces):
            return faces
        label = faces.probs.argmax(1)
        im = self.annotations.get(image_key(image)) if self.annotations else None
        if im is not None and len(im.boxes):
            iou = ops.box_iou(faces.xyxy, im.boxes.astype(np.float32))
            best = iou.argmax(1)
            hit = iou[np.arange(len(faces)), best] >= self.iou
            label[hit] = [LABELS.index(im.labels[j]) for j in best[hit]]
        return faces.with_probs(np.eye(len(LABELS), dtype=np.float32)[label], LABELS)


def image_key(image: np.ndarray) -> str:
    import hashlib

    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


def ensemble_variants(default: Any) -> dict[str, Any]:
    """The default ensemble and its merging knobs, one at a time: NMS IoU; the IoU from which boxes
    vote; plain member thresholds (every face a member returns at 0.2 / 0.5 or 0.2 / 0.3) instead of
    the agreement rule."""
    from maskwatch.detectors import build

    out = {}
    for nms in (0.5, 0.3, 0.2):
        det = copy.copy(default)
        det.nms_threshold = nms
        label = f"NMS {nms}, agreement (YuNet 0.02 / solo 0.2, maskwatch 0.3 / solo 0.5)"
        out[label + (" = default" if nms == default.nms_threshold else "")] = det
    for vote in (0.3, 0.6):
        det = copy.copy(default)
        det.vote_threshold = vote
        out[f"NMS {default.nms_threshold}, agreement, box voting from IoU {vote} (default {default.vote_threshold})"] = det
    for mw in (0.5, 0.3):
        det = copy.copy(default)
        det.detectors = [build("yunet"), build("maskwatch", score_threshold=mw)]  # measured settings, calibrated
        det.solo_thresholds = None
        out[f"NMS {default.nms_threshold}, plain thresholds (YuNet 0.2, maskwatch {mw})"] = det
    return out


def mosaics(images: list, out_dir: Path, n: int = 3) -> list:
    """Validation photos pasted at native resolution into n x n mosaics (VocImage list, JPEGs on disk)."""
    from maskwatch.imageio import read_image
    from maskwatch.datasets import VocImage

    result = []
    groups = [images[i:i + n * n] for i in range(0, len(images) - n * n + 1, n * n)]
    for g, group in enumerate(groups):
        photos = [read_image(im.path) for im in group]
        ch, cw = max(p.shape[0] for p in photos), max(p.shape[1] for p in photos)
        canvas = np.full((ch * n, cw * n, 3), 114, np.uint8)
        boxes, labels, difficult = [], [], []
        for k, (im, photo) in enumerate(zip(group, photos)):
            y0, x0 = (k // n) * ch, (k % n) * cw
            canvas[y0:y0 + photo.shape[0], x0:x0 + photo.shape[1]] = photo
            boxes.append(im.boxes + np.float32([x0, y0, x0, y0]))
            labels += list(im.labels)
            difficult.append(im.difficult)
        path = out_dir / f"mosaic_{g:02d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        result.append(VocImage(path, canvas.shape[1], canvas.shape[0], np.concatenate(boxes), labels,
                               np.concatenate(difficult)))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--detector", default=None, help="detector of the pipeline (default: maskwatch.load()'s)")
    p.add_argument("--tiling-detectors", nargs="+", default=["ssd", "yunet", "maskwatch", "yunet+maskwatch"])
    p.add_argument("--tile", type=int, default=640)
    p.add_argument("--limit", type=int, default=None, help="only N validation images (quick check)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "refinements.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "detection.md")
    args = p.parse_args()
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    import maskwatch
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.detectors import Ensemble, build
    from maskwatch.evaluation import evaluate_detection, load_split
    from maskwatch.pipeline import Pipeline
    from maskwatch.presets import PRESETS

    split, images = load_split(args.shared / "data" / "fmd", "val", args.limit, layout=SHARED_LAYOUT)
    name = args.detector or PRESETS["photo"].detector
    detector = build(name)  # as maskwatch.load builds it
    clf = maskwatch.MaskClassifier()
    from bench_detect import cpu_name  # noqa: E402  (same folder)

    result: dict[str, Any] = {"split": split, "n_images": len(images), "detector": name,
                              "pipeline": repr(Pipeline(detector, clf)), "cpu_count": os.cpu_count(), "machine": cpu_name()}

    def run(label: str, pipe: Any, on: list | None = None) -> dict[str, Any]:
        row = summary(evaluate_detection(pipe, images if on is None else on))
        print(label, json.dumps({k: row[k] for k in ("mAP50", "face_recall")}), flush=True)
        return row

    result["min_face"] = {v: run(f"min_face {v}", Pipeline(detector, clf, min_face=v)) for v in (0, 4, 6, 8, 10, 12)}
    result["crop_margin"] = {v: run(f"margin {v}", Pipeline(detector, maskwatch.MaskClassifier(crop_margin=v)))
                             for v in (0.0, 0.1, 0.2, 0.3, 0.4)}
    tmp = tempfile.TemporaryDirectory()
    big = mosaics(images, Path(tmp.name))
    if isinstance(detector, Ensemble) and detector.solo_thresholds:
        from bench_detect import closeups, false_faces  # noqa: E402  (same folder)

        photos = closeups(args.shared)
        result["ensemble"] = {}
        for label, det in ensemble_variants(detector).items():
            row = run(f"ensemble {label}", Pipeline(det, clf))
            on_big = run(f"ensemble {label} mosaics", Pipeline(det, clf), big)
            row.update(closeup_false_faces=false_faces(det, photos), mosaic_mAP50=on_big["mAP50"],
                       mosaic_face_recall=on_big["face_recall"])
            result["ensemble"][label] = row
    from maskwatch.imageio import read_image

    annotations = {image_key(read_image(im.path)): im for im in images}
    result["class_source"] = {
        "classifier (2 passes)": run("two passes", Pipeline(detector, clf)),
        "classifier's most probable class, scored by the detector alone": run("one-hot", Pipeline(detector, OneHot(clf))),
        "annotation of the matched face (ceiling), scored by the detector alone":
            run("ceiling", Pipeline(detector, OneHot(clf, annotations))),
    }
    if name == "maskwatch":
        result["class_source"].update({
            "detector (1 pass)": run("one pass", Pipeline(detector, None)),
            "mean of both": run("mean", Pipeline(detector, MeanProbs(clf))),
        })
    with tmp:
        sides = [max(im.width, im.height) for im in big]
        result["tiling"] = {"n_mosaics": len(big), "long_side_px": [min(sides), int(np.median(sides)), max(sides)],
                            "tile": args.tile, "rows": []}
        for det in args.tiling_detectors:
            for tile in (None, args.tile):
                pipe = maskwatch.load(det, tile=tile)
                t0 = time.perf_counter()
                row = run(f"tiling {det} {tile}", pipe, big)
                row.update({"detector": det, "tile": tile, "seconds": round(time.perf_counter() - t0, 1)})
                result["tiling"]["rows"].append(row)
    args.json.write_text(json.dumps(result, indent=1))
    from bench_detect import splice  # noqa: E402  (same folder)

    doc = args.markdown.read_text() if args.markdown.exists() else ""
    args.markdown.write_text(splice(doc, markdown(result), START, END))
    print(f"wrote {args.json} and {args.markdown}")


START, END = "<!-- bench_refinements.py:start -->", "<!-- bench_refinements.py:end -->"


def _f(v: float | None, d: int = 3) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def _row(key: Any, r: dict[str, Any]) -> str:
    ap = r.get("AP50") or {}
    false = (f" {_f(r['closeup_false_faces'], 2)} | {_f(r['mosaic_mAP50'])} | {_f(r['mosaic_face_recall'])} |"
             if "closeup_false_faces" in r else "")
    return (f"| {key} | {_f(r['mAP50'])} | {_f(ap.get('with_mask'))} | {_f(ap.get('without_mask'))} "
            f"| {_f(ap.get('mask_worn_incorrectly'))} | {_f(r.get('mAP50_95'))} | {_f(r['face_AP50'])} "
            f"| {_f(r['face_recall'])} | {_f(r['pipeline_ms'], 1)} |{false}")


def markdown(r: dict[str, Any]) -> str:
    head = ("| mAP@0.5 | AP with_mask | AP without_mask | AP incorrect | mAP@0.5:0.95 | face AP@0.5 | face recall "
            "| ms/image |", "|---|---|---|---|---|---|---|---|---|")
    lines = ["## Two-stage refinements", "",
             f"`benchmarks/bench_refinements.py`, pipeline `{r['pipeline']}`, validation split ({r['n_images']} "
             "fmd images), one knob at a time; ms: median pipeline time per image during the evaluation "
             f"({r['cpu_count']} cores of {r.get('machine', 'an unrecorded CPU')}).", ""]
    for key, title in (("min_face", "minimum face side (px)"), ("crop_margin", "classifier crop margin"),
                       ("ensemble", "ensemble merging"), ("class_source", "class probabilities from")):
        if key not in r:
            continue
        if key == "ensemble":
            lines += [f"| {title} " + head[0] + " false faces / close-up | mosaics mAP@0.5 | mosaics face recall |",
                      head[1] + "---|---|---|"]
        else:
            lines += [f"| {title} " + head[0], head[1]]
        lines += [_row(k, v) for k, v in r[key].items()]
        lines.append("")
    t = r["tiling"]
    lo, med, hi = t["long_side_px"]
    lines += [f"Tiling: {t['n_mosaics']} mosaics of 3x3 validation photos at native resolution (longer side "
              f"{lo}–{hi} px, median {med}), each detector with its defaults, without and with "
              f"{t['tile']} px tiles (25% overlap) + a whole-image pass:", "",
              "| detector | tiles " + head[0], "|---" + head[1]]
    lines += [_row(f"{row['detector']} | {row['tile'] or 'no'}", row) for row in t["rows"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
