"""Detector x input scale -> mAP@0.5, face recall, latency; plus a 640x480 frame timing vs. peers.

    MASKWATCH_MODELS=../shared/models python benchmarks/bench_detect.py --shared ../shared

1. Runs `maskwatch.evaluation` (the end-to-end evaluation behind ``maskwatch eval``) on the
   validation split of fmd (the default classifier's validation images) for every configuration:
   each detector at several input scales, followed by the default mask classifier (two passes) and,
   for maskwatch's own detector, also alone (one pass).
2. Times each configuration on one 640x480 frame with up to 5 faces (an fmd validation photo
   resized to 640x480): median of --repeat runs after warm-up, detector pass and whole pipeline,
   together with the peer face-mask detectors in ../shared/peers (forward pass + decoding, read
   in place). All are timed round-robin, one call each per round, so background load hits every
   configuration alike (``--timing-only`` re-times without re-evaluating). Every ONNX Runtime
   session, the peers' included, runs without idle spinning (`maskwatch.onnxmodel.SPINNING`), so
   one configuration's threads do not slow the next one in the round.

Writes benchmarks/results/detect.json and the Markdown table docs/detection.md. Use all cores the
target has (2 here); the numbers are medians, but a busy machine still inflates them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: (detector, scale, classifier, box calibration, score threshold) — classifier "default" (two
#: passes) or None (detector alone); calibration: the detector's registry entry (maskwatch.detectors); score threshold None: the detector's default. Scale "S, long side >= N": scale S with
#: small images upscaled to a longer side of N px (0.8 and 512: a 640x480 frame runs at 512x384, an
#: fmd photo of 400 px is upscaled to 512 — the same faces at the same size). "yunet+maskwatch" rows: the ensemble
#: (`maskwatch.detectors.ensemble`) as `maskwatch.load()` builds it; threshold "agreement": each member's face is
#: kept alone from 0.2 (YuNet) / 0.5 (maskwatch), and down to 0.02 / 0.3 where the other member finds
#: it too (`maskwatch.detectors.ensemble.YUNET_MASKWATCH`; bench_refinements.py compares plain thresholds).
W512, W640, W800 = "0.8, long side >= 512", "1.0, long side >= 640", "1.0, long side >= 800"
CONFIGS: list[tuple[str, float | str, str | None, bool, float | str | None]] = [
    ("yunet", 1.0, "default", False, None), ("yunet", 2.0, "default", False, None),
    ("yunet", 3.0, "default", False, None), ("yunet", 2.0, "default", True, 0.2),
    ("yunet", W800, "default", True, 0.2), ("yunet", 3.0, "default", True, 0.3),
    ("ssd", 1.0, "default", False, None), ("ssd", 2.0, "default", False, None), ("ssd", 3.0, "default", True, 0.3),
    ("haar", 1.0, "default", False, None), ("haar", 2.0, "default", False, None),
    ("maskwatch", W640, None, False, 0.3), ("maskwatch", W640, "default", False, 0.3),
    ("maskwatch", W640, None, False, 0.1), ("maskwatch", W640, "default", False, 0.1),
    ("maskwatch", W800, "default", False, 0.3), ("maskwatch", 1.5, "default", False, 0.3),
    ("maskwatch", W640, "default", False, 0.5),
    ("maskwatch", W512, None, False, 0.3), ("maskwatch", W512, "default", False, 0.3),
    ("maskwatch-fp32", W640, None, False, 0.3), ("maskwatch-fp32", W640, "default", False, 0.3),
    ("yunet+maskwatch", "default", "default", True, "agreement"),
]
#: The row that is maskwatch.load()'s default.
DEFAULT_ROW = ("yunet+maskwatch", "default", 2, True, "agreement")


def cpu_name() -> str:
    """The CPU model and whether it has VNNI (int8 dot products; without it ONNX Runtime's int8 kernels
    add uint8 x int8 products in int16, see `maskwatch.train.export.quantize_qdq`)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vnni = "VNNI" if any("vnni" in f for f in flags) else ("AVX2, no VNNI" if "avx2" in flags else "no AVX2")
    return f"{model} ({vnni})"


def closeups(shared: Path) -> list[np.ndarray]:
    """Close-up photos of one face each (the classification crop sets, other sources than fmd)."""
    from maskwatch.evaluation.closeups import BENCHMARK_PER_CLASS, closeup_files
    from maskwatch.imageio import read_image

    return [read_image(f) for f, _ in closeup_files(shared / "data" / "crops", BENCHMARK_PER_CLASS)]


def false_faces(detector: Any, photos: list[np.ndarray]) -> float | None:
    """Faces found beyond the one face of each close-up photo, per photo."""
    if not photos:
        return None
    return float(np.mean([max(len(detector.detect(p)) - 1, 0) for p in photos]))


def interleaved_ms(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median ms of each function, timed round-robin (one call of each per round), so that other
    load on the machine affects every configuration alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {k: float(np.median(v) * 1000) for k, v in times.items()}


def test_frame(images: list, max_faces: int = 5) -> tuple[np.ndarray, str]:
    """A 640x480 RGB frame: the validation photo with the most (<= max_faces) faces, resized."""
    from maskwatch.imageio import read_image

    cands = sorted((im for im in images if 1 <= len(im.boxes) <= max_faces), key=lambda im: (-len(im.boxes), im.stem))
    im = cands[0]
    return cv2.resize(read_image(im.path), (640, 480), interpolation=cv2.INTER_LINEAR), f"{im.path.name} ({len(im.boxes)} faces)"


def peer_runners(peers: Path, frame: np.ndarray, models: Path) -> dict[str, Callable[[], None]]:
    """One call = one 640x480 frame through each peer detector (forward + light decoding)."""
    from maskwatch import ops
    from maskwatch.onnxmodel import onnx_session

    out: dict[str, Callable[[], None]] = {}
    rfb = peers / "ultralight_RFB-640-masked_face-v2.onnx"
    if rfb.is_file():
        sess = onnx_session(rfb)  # maskwatch's session options: no idle spinning between rounds
        name = sess.get_inputs()[0].name

        def run_rfb() -> None:
            x = ((cv2.resize(frame, (640, 480)).astype(np.float32) - 127) / 128).transpose(2, 0, 1)[None]
            scores, boxes = sess.run(None, {name: x})
            for c in (1, 2):
                keep = scores[0, :, c] > 0.5
                ops.nms(boxes[0, keep] * np.float32([640, 480, 640, 480]), scores[0, keep, c], 0.4)

        out["ultralight RFB-640 masked-face (1 pass)"] = run_rfb
    aizoo = peers / "aizoo_face_mask_detection.caffemodel"
    if aizoo.is_file():
        net = cv2.dnn.readNetFromCaffe(str(peers / "aizoo_face_mask_detection.prototxt"), str(aizoo))

        def run_aizoo() -> None:
            blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (260, 260))
            net.setInput(blob)
            net.forward(net.getUnconnectedOutLayersNames())

        out["AIZOO SSD 260x260 (1 pass, forward only)"] = run_aizoo
    keras = peers / "chandrikadeb_mask_detector.onnx"
    if keras.is_file() and (models / "res10_deploy.prototxt").is_file():
        ssd = cv2.dnn.readNetFromCaffe(str(models / "res10_deploy.prototxt"),
                                       str(models / "res10_300x300_ssd_iter_140000.caffemodel"))
        clf = onnx_session(keras)
        cname = clf.get_inputs()[0].name

        def run_tutorial() -> None:
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            ssd.setInput(cv2.dnn.blobFromImage(bgr, 1.0, (300, 300), (104.0, 177.0, 123.0)))
            det = ssd.forward()[0, 0]
            det = det[det[:, 2] > 0.5][:5]
            crops = ops.crop_faces(frame, det[:, 3:7] * np.float32([640, 480, 640, 480]), 224, 0.0) if len(det) else \
                np.zeros((0, 224, 224, 3), np.uint8)
            if len(crops):
                clf.run(None, {cname: crops.astype(np.float32) / 127.5 - 1})

        out["chandrikadeb tutorial: res10 SSD + Keras MobileNetV2 (2 passes)"] = run_tutorial
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--repeat", type=int, default=30, help="timed runs per configuration on the 640x480 frame")
    p.add_argument("--limit", type=int, default=None, help="evaluate only N validation images (quick check)")
    p.add_argument("--only", nargs="*", default=None,
                   help="detector names to run (default: all available); other rows are kept from --json")
    p.add_argument("--detector-model", type=Path, default=None,
                   help="fp32 maskwatch detector ONNX for the maskwatch-fp32 rows (default: skip them); the "
                        "maskwatch rows use the shipped int8 model")
    p.add_argument("--timing-only", action="store_true",
                   help="only re-time the configurations; accuracy columns are kept from --json")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "detect.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "detection.md")
    args = p.parse_args()
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    import maskwatch
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.detectors import Calibrated, build, describe, entry
    from maskwatch.evaluation import evaluate_detection, load_split
    from maskwatch.pipeline import Pipeline

    data = args.shared / "data" / "fmd"
    split, images = load_split(data, "val", args.limit, layout=SHARED_LAYOUT)
    frame, frame_name = test_frame(images)
    classifier = maskwatch.MaskClassifier()
    photos = [] if args.timing_only else closeups(args.shared)
    last = json.loads(args.json.read_text()) if args.json.is_file() else {}
    previous = last.get("rows", [])
    key = lambda r: (r["detector"], r["scale"], r["passes"], r["calibrated"], r["score_threshold"])  # noqa: E731
    known = {key(r): r for r in previous}
    rows, timed = [], {}
    for det_name, scale, clf, calibrate, threshold in CONFIGS:
        if args.only and det_name not in args.only:
            continue
        kw: dict[str, Any] = {"scale": scale}
        if isinstance(scale, str) and ", long side >= " in scale:
            kw = {"scale": float(scale.split(",")[0]), "min_side": int(scale.rsplit(" ", 1)[1])}
        create_name = det_name
        if det_name == "maskwatch-fp32":
            if not args.detector_model:
                kept = known.get((det_name, scale, 2 if clf else 1, calibrate, threshold))
                if args.timing_only and kept:  # keep the accuracy, but no stale time from another run
                    rows.append({**kept, "frame_detector_ms": None, "frame_pipeline_ms": None})
                continue
            create_name, kw["model_path"] = "maskwatch", args.detector_model
        if isinstance(threshold, float):
            kw["score_threshold"] = threshold
        try:
            if det_name == "yunet+maskwatch":
                detector = build(det_name)
            else:
                detector = maskwatch.create_detector(create_name, **kw)
        except (FileNotFoundError, maskwatch.MaskwatchError) as exc:
            print(f"skipped {det_name}: {exc}")
            continue
        if calibrate and det_name != "yunet+maskwatch":
            detector = Calibrated(detector, entry(create_name).calibration or (0.0, 0.0, 1.0, 1.0))
        pipe = Pipeline(detector, classifier if clf else None)
        row = {"detector": det_name, "scale": scale, "passes": 2 if clf else 1, "calibrated": calibrate,
               "score_threshold": threshold if threshold is not None else describe(detector)["score_threshold"]}
        if args.timing_only:
            if key(row) not in known:
                print(f"skipped {key(row)}: no accuracy row in {args.json}")
                continue
            row = dict(known[key(row)])
        else:
            m = evaluate_detection(pipe, images)
            row.update({k: m.get(k) for k in ("mAP50", "mAP50_ci95", "mAP50_95", "mAP50_all_classes", "face_AP50",
                                              "face_recall", "AP50", "AP50_ci95")})
            row.update({"compliance_mAP50": m.get("compliance", {}).get("mAP50"),
                        "face_recall_by_size": {k: v["face_recall"] for k, v in m["by_size"].items()},
                        "eval_ms_median": (m["latency"]["pipeline"] or {}).get("median_ms"),
                        "closeup_false_faces": false_faces(detector, photos)})
            print(json.dumps({k: row[k] for k in ("detector", "scale", "passes", "calibrated", "score_threshold",
                                                  "mAP50", "face_recall")}), flush=True)
        i = len(rows)
        rows.append(row)
        timed[f"det{i}"] = (lambda d: lambda: d.detect(frame))(detector)
        timed[f"pipe{i}"] = (lambda q: lambda: q.detect(frame))(pipe)
    peers = peer_runners(args.shared / "peers", frame, args.shared / "models")
    ms = interleaved_ms({**timed, **peers}, args.repeat)
    for i, row in enumerate(rows):
        if f"det{i}" in ms:
            row["frame_detector_ms"], row["frame_pipeline_ms"] = ms[f"det{i}"], ms[f"pipe{i}"]
    peers = {k: ms[k] for k in peers}
    if args.only:  # keep the other detectors' rows of the last run
        order = {(c[0], c[1], 2 if c[2] else 1, c[3]): i for i, c in enumerate(CONFIGS)}
        rows = [r for r in previous if r["detector"] not in args.only] + rows
        rows.sort(key=lambda r: order.get((r["detector"], r["scale"], r["passes"], r["calibrated"]), len(order)))
    result = {"split": split, "n_images": len(images), "frame": frame_name, "repeat": args.repeat,
              "cpu_count": os.cpu_count(), "machine": cpu_name(),
              "n_closeups": len(photos) if photos else last.get("n_closeups", 0), "rows": rows, "peers_frame_ms": peers}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(splice(args.markdown.read_text() if args.markdown.exists() else "", markdown(result)))
    print(f"wrote {args.json} and {args.markdown}")


START, END = "<!-- bench_detect.py:start -->", "<!-- bench_detect.py:end -->"


def splice(document: str, table: str, start: str = START, end: str = END) -> str:
    """Replace the generated part of ``document`` (between the markers), keeping the prose around it."""
    block = f"{start}\n{table}{end}\n"
    if start in document and end in document:
        head, rest = document.split(start, 1)
        return head + block + rest.split(end, 1)[1].lstrip("\n")
    return document + ("\n" if document else "") + block


def _f(v: float | None, d: int = 3) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def markdown(r: dict[str, Any]) -> str:
    lines = ["## Detector x input scale", "",
             f"Validation split: {r['split']}, {r['n_images']} fmd images (never seen by the mask classifier). "
             f"ms: median on one 640x480 frame ({r['frame']}), {r['cpu_count']} cores of {r['machine']}, {r['repeat']} "
             "rounds, every configuration and peer timed round-robin. "
             "mAP@0.5 over the three classes (all-point AP, a face scored as its most probable class). "
             f"False faces / close-up: faces found beyond the one face of each of {r.get('n_closeups', 0)} close-up "
             "photos of the classification sets (other sources than fmd; detector alone).", "",
             "| detector | scale | passes | box calibration | score threshold | mAP@0.5 | AP with_mask | AP without_mask | AP incorrect | mAP@0.5:0.95 "
             "| face AP@0.5 | face recall | recall <16 px | false faces / close-up | detector ms | pipeline ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        ap = row.get("AP50") or {}
        lines.append(
            f"| {row['detector']} | {row['scale']} | {row['passes']} | {'yes' if row['calibrated'] else 'no'} "
            f"| {row['score_threshold']} "
            f"| {_f(row['mAP50'])} | {_f(ap.get('with_mask'))} "
            f"| {_f(ap.get('without_mask'))} | {_f(ap.get('mask_worn_incorrectly'))} | {_f(row['mAP50_95'])} "
            f"| {_f(row['face_AP50'])} | {_f(row['face_recall'])} | {_f(row['face_recall_by_size'].get('tiny (<16)'))} "
            f"| {_f(row.get('closeup_false_faces'), 2)} | {_f(row['frame_detector_ms'], 1)} | {_f(row['frame_pipeline_ms'], 1)} |")
    if r["peers_frame_ms"]:
        lines += ["", "Peer face-mask detectors on the same 640x480 frame (forward + decoding; their accuracy on "
                  "fmd is not measured here):", "", "| peer | ms |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in r["peers_frame_ms"].items()]
        default = next((row for row in r["rows"] if (row["detector"], row["scale"], row["passes"], row["calibrated"],
                        row["score_threshold"]) == DEFAULT_ROW), None)
        if default:
            ratios = ", ".join(f"{default['frame_pipeline_ms'] / v:.1f}x {k.split(' (')[0]}"
                               for k, v in r["peers_frame_ms"].items())
            if default.get("mAP50_ci95"):
                ci = {"mAP@0.5": (default["mAP50"], default["mAP50_ci95"]),
                      **{f"AP {k}": (default["AP50"][k], v) for k, v in default["AP50_ci95"].items() if v}}
                lines += ["", "How much of the default's accuracy is the luck of 138 validation images (95% bootstrap "
                          "interval, images resampled): " + ", ".join(f"{k} {v:.3f} ({lo:.3f}–{hi:.3f})"
                                                                     for k, (v, (lo, hi)) in ci.items()) + "."]
            lines += ["", "Current default pipeline (yunet+maskwatch: YuNet at scale 1, small images upscaled to an "
                      "800 px long side, calibrated boxes + maskwatch's detector at scale 1, 640 px; a face kept from score 0.2 "
                      "(YuNet) / 0.5 (maskwatch) alone, from 0.02 / 0.3 where both find it; faces merged by NMS at IoU "
                      "0.2; + classifier): "
                      f"{default['frame_pipeline_ms']:.1f} ms per frame; our time / peer time: {ratios}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
