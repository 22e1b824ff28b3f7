"""LiteRT (TFLite) files of the default detector and classifier against their ONNX originals.

    python benchmarks/bench_tflite.py --shared ../shared [--models DIR]

Without ``--models`` it first runs ``maskwatch export default --format tflite`` (timed) into a
temporary folder; with it, it reads the files found there. Then, on fmd's 138 validation photos
(the split every maskwatch benchmark scores):

* mAP@0.5 and face recall of the default pipeline (``rfb``, one pass) and of ``rfb`` + classifier
  (two passes), per runtime: ONNX Runtime, LiteRT float32, LiteRT int8 (``maskwatch.load(runtime=...)``);
* per-tensor max absolute difference, LiteRT vs ONNX Runtime: the detector's ``scores`` / ``locs`` on
  each photo's network input, the classifier's ``logits`` on the crops of the photos' faces, and the
  share of crops whose top class agrees;
* file sizes;
* speed: median ms of one detector pass on a 640x480 frame and of one classifier crop, ONNX Runtime
  vs the LiteRT interpreter (XNNPACK), 1 and 2 threads, interleaved so that background load affects
  all alike.

Writes benchmarks/results/tflite.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

RUNTIMES = ("onnx", "tflite", "tflite-int8")


START, END = "<!-- bench_tflite:start -->", "<!-- bench_tflite:end -->"


def markdown(r: dict) -> str:
    """The tables of docs/mobile.md."""
    lines = [f"fmd validation, {r['n_fmd']} photos; {r['machine']}, {r['cpu_count']} cores; {r['note']}.", "",
             "| pipeline | runtime | mAP@0.5 | vs ONNX | face recall | ms / photo |", "|---|---|---|---|---|---|"]
    for name, row in r["accuracy"].items():
        for runtime, v in row.items():
            delta = v.get("mAP50_minus_onnx")
            lines.append(f"| {name} | {runtime} | {v['mAP50']:.4f} | {'' if delta is None else f'{delta:+.4f}'} "
                         f"| {v['face_recall']:.4f} | {v['photo_ms']:.1f} |" if "photo_ms" in v else
                         f"| {v['face_recall']:.4f} | |")
    lines += ["", "Largest absolute difference from ONNX Runtime, per output tensor (detector: each photo's network "
              "input; classifier: the crops of the photos' annotated faces):", "",
              "| file | detector `scores` | detector `locs` | classifier `logits` | classifier top-1 agreement |",
              "|---|---|---|---|---|"]
    for precision, d in r["max_abs_diff"].items():
        lines.append(f"| {precision} | {d['detector']['scores']:.2g} | {d['detector']['locs']:.2g} "
                     f"| {d['classifier']['logits']:.2g} | {d['classifier']['top1_agreement']:.4f} |")
    s = r["size_bytes"]
    lines += ["", "| file | detector | classifier | together |", "|---|---|---|---|"]
    for precision in ("float32", "int8"):
        lines.append(f"| LiteRT {precision} | {s[precision]['detector'] / 1e6:.2f} MB | {s[precision]['classifier'] / 1e6:.2f} MB "
                     f"| {s[precision]['total'] / 1e6:.2f} MB |")
    lines.append(f"| ONNX (shipped) | {s['onnx']['detector'] / 1e6:.2f} MB | {s['onnx']['classifier_float32'] / 1e6:.2f} MB "
                 f"(int8: {s['onnx']['classifier_int8'] / 1e6:.2f} MB) | |")
    lines += ["", f"Median ms per call ({r['repeat']} interleaved rounds): the detector on a 640x480 input, the "
              "classifier on one crop; LiteRT with its XNNPACK CPU delegate.", "",
              "| threads | model | " + " | ".join(r["speed"]["1 thread"]["detector_640x480_ms"]) + " |",
              "|---|---|" + "---|" * len(r["speed"]["1 thread"]["detector_640x480_ms"])]
    for threads, v in r["speed"].items():
        lines.append(f"| {threads} | detector | " + " | ".join(f"{x:.1f}" for x in v["detector_640x480_ms"].values()) + " |")
    clf = r["speed"]["1 thread"]["classifier_crop_ms"]
    lines += ["", "| threads | model | " + " | ".join(clf) + " |", "|---|---|" + "---|" * len(clf)]
    for threads, v in r["speed"].items():
        lines.append(f"| {threads} | classifier | " + " | ".join(f"{x:.1f}" for x in v["classifier_crop_ms"].values()) + " |")
    if r.get("export_seconds"):
        lines += ["", f"`maskwatch export default --format tflite` took {r['export_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def median_ms(fns: dict, repeat: int) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(3):
            fn()
    secs: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            secs[key].append(time.perf_counter() - t0)
    return {k: round(float(np.median(v)) * 1000, 3) for k, v in secs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--models", type=Path, default=None, help="folder with the exported .tflite files")
    p.add_argument("--repeat", type=int, default=50, help="timed rounds per speed measurement")
    p.add_argument("--limit", type=int, default=None, help="only N photos (quick check)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "tflite.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "mobile.md")
    args = p.parse_args()
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    from bench_detect import cpu_name, metrics, splice

    result: dict = {"machine": cpu_name(), "cpu_count": os.cpu_count(),
                    "note": os.environ.get("MASKWATCH_BENCH_NOTE", "no other benchmark running")}
    tmp = None
    if args.models is None:
        tmp = tempfile.TemporaryDirectory()
        args.models = Path(tmp.name)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "maskwatch.cli", "export", "default", "--format", "tflite", "-o",
                        str(args.models), "--calibration-data", str(args.shared / "data" / "fmd")], check=True,
                       stdout=subprocess.DEVNULL)
        result["export_seconds"] = round(time.perf_counter() - t0, 1)
    os.environ["MASKWATCH_MODELS"] = str(args.models)

    import maskwatch
    from maskwatch import registry
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.detectors import rfb
    from maskwatch.evaluation import load_split
    from maskwatch.imageio import read_image
    from maskwatch.litertmodel import LiteRTModel
    from maskwatch.onnxmodel import OnnxModel
    from maskwatch.ops import crop_faces, normalize
    from maskwatch.train.litert import compare, detector_inputs

    _, fmd = load_split(args.shared / "data" / "fmd", "val", args.limit, layout=SHARED_LAYOUT)
    images = [read_image(im.path) for im in fmd]
    result["n_fmd"] = len(fmd)
    result["fmd_split"] = "val (138 photos of the classifier's group split)"

    # accuracy of whole pipelines per runtime
    acc: dict = {}
    runs = [(runtime, name, clf) for runtime in RUNTIMES
            for name, clf in (("rfb, 1 pass (default)", None), ("rfb + classifier, 2 passes", "default"))]
    # the default ONNX classifier is the int8 ONNX file; the LiteRT files convert the float32 one
    runs.append(("onnx, float32 classifier", "rfb + classifier, 2 passes", str(registry.resolve("mask-classifier"))))
    for runtime, name, clf in runs:
        pipe = maskwatch.load("rfb", classifier=clf, runtime=runtime.split(",")[0], threads=2)
        faces, secs = [], []
        for image in images:
            t0 = time.perf_counter()
            faces.append(pipe.detect(image))
            secs.append(time.perf_counter() - t0)
        m = metrics(fmd, faces, secs)
        acc.setdefault(name, {})[runtime] = {"mAP50": m["mAP50"], "face_recall": m["face_recall"],
                                             "photo_ms": round(float(np.median(secs)) * 1000, 2),
                                             "compliance_mAP50": m["compliance_mAP50"], "AP50": m["AP50"]}
        print(json.dumps({"pipeline": name, "runtime": runtime, "mAP50": m["mAP50"]}), flush=True)
    for row in acc.values():
        for runtime in [r for r in row if r != "onnx"]:
            row[runtime]["mAP50_minus_onnx"] = round(row[runtime]["mAP50"] - row["onnx"]["mAP50"], 4)
    result["accuracy"] = acc

    # per-tensor differences
    det_onnx = OnnxModel(registry.resolve(rfb.MODEL_FILES["onnx"]), "detector", 2)
    from maskwatch.detectors import build

    inputs, found = detector_inputs(images, build("rfb", threads=2))
    clf_onnx = OnnxModel(registry.resolve("mask-classifier"), "classifier", 2)
    spec = clf_onnx.spec
    crops = [c for image, im in zip(images, fmd) if len(im.boxes)
             for c in crop_faces(image, np.asarray(im.boxes, np.float32), spec.input_size, spec.crop_margin)]
    crop_x = normalize(np.stack(crops), spec.mean, spec.std)
    batches = [crop_x[i : i + 32] for i in range(0, len(crop_x), 32)]
    diffs: dict = {}
    sizes: dict = {}
    for runtime, precision in (("tflite", "float32"), ("tflite-int8", "int8")):
        det = LiteRTModel(registry.resolve(rfb.MODEL_FILES[runtime]), "detector", 2)
        clf_name = {"tflite": "mask-classifier-tflite", "tflite-int8": "mask-classifier-tflite-int8"}[runtime]
        clf = LiteRTModel(registry.resolve(clf_name), "classifier", 2)
        ref = np.concatenate([clf_onnx.run(None, b)[0] for b in batches])
        got = np.concatenate([clf.run(None, b.transpose(0, 2, 3, 1))[0] for b in batches])
        diffs[precision] = {"detector": compare(det_onnx, det, inputs),
                            "classifier": {"logits": float(np.abs(ref - got).max()),
                                           "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1)))},
                            "classifier_crops": len(crop_x)}
        sizes[precision] = {"detector": det.path.stat().st_size, "classifier": clf.path.stat().st_size}
        sizes[precision]["total"] = sizes[precision]["detector"] + sizes[precision]["classifier"]
    sizes["onnx"] = {"detector": det_onnx.path.stat().st_size, "classifier_float32": clf_onnx.path.stat().st_size,
                     "classifier_int8": registry.resolve("mask-classifier-int8").stat().st_size}
    result["max_abs_diff"] = diffs
    result["size_bytes"] = sizes
    result["int8_under_4MB"] = sizes["int8"]["total"] <= 4 * 1024 * 1024

    # speed
    frame = cv2.resize(images[0], (640, 480), interpolation=cv2.INTER_LINEAR)
    x = rfb.normalize(frame[None])  # NCHW: ONNX Runtime; the LiteRT files get NHWC, as in the pipeline
    inputs_of = {"NCHW": (x, crop_x[:1]), "NHWC": (rfb.normalize(frame[None], "NHWC"), np.ascontiguousarray(crop_x[:1].transpose(0, 2, 3, 1)))}
    speed: dict = {}

    def timed(model, which: int):
        """A zero-argument call of ``model`` on the frame (0) or the crop (1), in the model's layout."""
        v = inputs_of[model.layout][which]
        return lambda: model.run(None, v)

    for threads in (1, 2):
        det_fns = {"onnxruntime": timed(OnnxModel(det_onnx.path, "detector", threads), 0)}
        clf_fns = {"onnxruntime float32": timed(OnnxModel(clf_onnx.path, "classifier", threads), 1),
                   "onnxruntime int8": timed(OnnxModel(registry.resolve("mask-classifier-int8"), "classifier", threads), 1)}
        for runtime, precision in (("tflite", "float32"), ("tflite-int8", "int8")):
            det_fns[f"litert {precision}"] = timed(LiteRTModel(registry.resolve(rfb.MODEL_FILES[runtime]), "detector", threads), 0)
            clf_name = {"tflite": "mask-classifier-tflite", "tflite-int8": "mask-classifier-tflite-int8"}[runtime]
            clf_fns[f"litert {precision}"] = timed(LiteRTModel(registry.resolve(clf_name), "classifier", threads), 1)
        speed[f"{threads} thread{'s' if threads > 1 else ''}"] = {
            "detector_640x480_ms": median_ms(det_fns, args.repeat),
            "classifier_crop_ms": median_ms(clf_fns, args.repeat)}
        print(json.dumps(speed), flush=True)
    result["speed"] = speed
    result["repeat"] = args.repeat
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.limit is None:
        args.markdown.write_text(splice(args.markdown.read_text(), markdown(result), START, END))
    print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
