"""ONNX Runtime thread-pool spinning: "off" / "on" / "stop" -> ms per 640x480 frame, one model and whole pipelines.

    MASKWATCH_MODELS=../shared/models python benchmarks/bench_threads.py --shared ../shared

ONNX Runtime's intra-op threads spin (busy-wait) after a run by default. In a pipeline the next
step — another ONNX model, or OpenCV's YuNet — then shares the two cores with a spinning thread.
This benchmark times, for each `maskwatch.onnxmodel.SPINNING` mode (set through
``MASKWATCH_SPINNING`` in a fresh process per measurement, so one mode's threads never meet
another's): maskwatch's detector alone, the mask classifier alone on the frame's faces, YuNet right
after maskwatch's detector, the YuNet pipeline (``watch``/``serve`` default) and the default pipeline
(``yunet+maskwatch`` + classifier), on the 640x480 frame of bench_detect.py. Modes alternate round by
round; the table gives the median over rounds of each process's median.

Writes benchmarks/results/threads.json and a table into docs/detection.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = ("on", "off", "stop")
CASES = {
    "maskwatch detector alone": "one model alone",
    "classifier alone": "one model alone",
    "yunet after maskwatch": "YuNet (OpenCV) right after an ONNX Runtime run",
    "pipeline yunet": "`watch` / `serve` default",
    "pipeline default": "`detect` default (yunet+maskwatch + classifier)",
    "default detector pass": "yunet+maskwatch, no classifier",
}


def child(shared: Path, calls: int) -> dict[str, float]:
    """One process, one mode (from the environment): median ms of each case."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_detect import test_frame

    import maskwatch
    from maskwatch.detectors import build, create_detector
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.evaluation import load_split

    frame, _ = test_frame(load_split(shared / "data" / "fmd", "auto", layout=SHARED_LAYOUT)[1])
    mw = create_detector("maskwatch", scale=1.0, score_threshold=0.3)
    yunet = create_detector("yunet", scale=1.0, score_threshold=0.6)
    p_yunet, p_default = maskwatch.load("yunet"), maskwatch.load()
    default_detector = build(maskwatch.presets.PRESETS["photo"].detector)  # the detector of p_default
    faces = default_detector(frame)

    def med(fn, before=None) -> float:
        times = []
        for i in range(calls + 3):
            if before:
                before()
            t0 = time.perf_counter()
            fn()
            if i >= 3:
                times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000)

    return {
        "maskwatch detector alone": med(lambda: mw.detect(frame)),
        "classifier alone": med(lambda: p_default.classify(frame, faces)),
        "yunet after maskwatch": med(lambda: yunet.detect(frame), lambda: mw.detect(frame)),
        "pipeline yunet": med(lambda: p_yunet.detect(frame)),
        "pipeline default": med(lambda: p_default.detect(frame)),
        "default detector pass": med(lambda: p_default.find_faces(frame)),
    }


def table(res: dict) -> str:
    head = "| case | what it shows | " + " | ".join(f"spinning {m} (ms)" for m in MODES) + " | off / on |\n"
    head += "|---|---|" + "---|" * (len(MODES) + 1) + "\n"
    rows = []
    for case, what in CASES.items():
        ms = {m: res["median_ms"][m][case] for m in MODES}
        rows.append(f"| {case} | {what} | " + " | ".join(f"{ms[m]:.1f}" for m in MODES) + f" | {ms['off'] / ms['on']:.2f} |")
    return ("## ONNX Runtime thread spinning (`bench_threads.py`)\n\n"
            f"ms per 640x480 frame ({res['frame']}), {res['cpu_count']} cores of {res.get('machine', 'an unrecorded CPU')}; "
            f"median over {res['rounds']} rounds of each "
            f"process's median of {res['calls']} calls; modes alternate round by round, one process each.\n\n"
            + head + "\n".join(rows) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--rounds", type=int, default=5, help="processes per mode")
    p.add_argument("--calls", type=int, default=30, help="timed calls per case in each process")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "threads.json")
    p.add_argument("--markdown", default=str(ROOT / "docs" / "detection.md"), help="file to update ('' = none)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.shared, a.calls)))
        return

    runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for r in range(a.rounds):
        for mode in MODES:
            env = {**os.environ, "MASKWATCH_SPINNING": mode}
            out = subprocess.run([sys.executable, __file__, "--child", "--shared", str(a.shared), "--calls", str(a.calls)],
                                 env=env, check=True, capture_output=True, text=True).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r + 1}/{a.rounds} {mode}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[mode][-1].items()),
                  flush=True)

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_detect import cpu_name, test_frame

    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.evaluation import load_split

    _, frame_name = test_frame(load_split(a.shared / "data" / "fmd", "auto", layout=SHARED_LAYOUT)[1])
    res = {"frame": frame_name, "rounds": a.rounds, "calls": a.calls, "cpu_count": os.cpu_count(), "machine": cpu_name(),
           "median_ms": {m: {c: float(np.median([r[c] for r in runs[m]])) for c in CASES} for m in MODES},
           "runs": runs}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=1))
    md = table(res)
    print(md)
    if a.markdown:
        doc = Path(a.markdown).read_text()
        start, end = "<!-- bench_threads.py:start -->", "<!-- bench_threads.py:end -->"
        block = f"{start}\n{md}{end}"
        if start in doc:
            doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
        else:
            doc = doc.rstrip("\n") + "\n\n" + block + "\n"
        Path(a.markdown).write_text(doc)


if __name__ == "__main__":
    main()
