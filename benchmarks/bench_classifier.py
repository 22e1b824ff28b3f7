"""Classifier latency and accuracy benchmark (issue 2 targets).

    python benchmarks/bench_classifier.py [--shared ../shared] [--runs 300]

Measures, in one run on this machine: batch-1 latency in ONNX Runtime of the shipped fp32 and int8
classifiers and of the peer Keras-MobileNetV2 classifier of the original tutorials
(../shared/peers/chandrikadeb_mask_detector.onnx, 224x224), with the ratio to the peer (machines
here are noisy; ratios drift less than absolute times); file sizes; and, when the run's split is
given, validation accuracy of fp32 vs int8. Writes benchmarks/results/classifier.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from maskwatch import registry
from maskwatch.classifier import MaskClassifier
from maskwatch.onnxmodel import onnx_session

ROOT = Path(__file__).resolve().parents[1]


def latency(fn, runs: int, warmup: int = 20) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90)), "runs": runs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "models": {}}
    for name in ("mask-classifier", "mask-classifier-int8"):
        path = registry.find(name)
        if path is None:
            continue
        clf = MaskClassifier(path, threads=args.threads)
        s = clf.spec.input_size
        crop = rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8)
        entry = latency(lambda: clf.predict_crops(crop), args.runs)
        entry.update(size_bytes=path.stat().st_size, input_size=s)
        result["models"][name] = entry
    peer = args.shared / "peers" / "chandrikadeb_mask_detector.onnx"
    if peer.is_file():
        sess = onnx_session(peer, threads=args.threads)
        inp = sess.get_inputs()[0]
        x = (rng.integers(0, 256, (1, 224, 224, 3)).astype(np.float32) / 127.5 - 1)
        entry = latency(lambda: sess.run(None, {inp.name: x}), args.runs)
        entry.update(size_bytes=peer.stat().st_size, input_size=224)
        result["models"]["peer:chandrikadeb (Keras MobileNetV2, 2 classes)"] = entry
        for name in ("mask-classifier", "mask-classifier-int8"):
            if name in result["models"]:
                result["models"][name]["speedup_vs_peer"] = entry["median_ms"] / result["models"][name]["median_ms"]
    metrics = registry.PACKAGE_MODELS / "mask_classifier.metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())["export"]
        result["val_accuracy"] = {"fp32": m.get("fp32_val_accuracy"), "int8": m.get("int8_val_accuracy")}
    out = ROOT / "benchmarks" / "results" / "classifier.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{'model':52s} {'median ms':>9s} {'p90 ms':>7s} {'MB':>6s}")
    for name, e in result["models"].items():
        print(f"{name:52s} {e['median_ms']:9.2f} {e['p90_ms']:7.2f} {e['size_bytes'] / 1e6:6.2f}")
    print(json.dumps(result.get("val_accuracy", {})))


if __name__ == "__main__":
    main()
