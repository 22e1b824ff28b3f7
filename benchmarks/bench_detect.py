"""Photo pipelines side by side with the published peers: accuracy, time per photo, Pareto front.

    python benchmarks/bench_detect.py --shared ../shared

Every configuration and every peer (../shared/peers: AIZOO's SSD, Ultra-Light's RFB-640
masked-face detector, the classic res10 SSD + Keras tutorial) runs in one interleaved loop: for
each photo, one call of each, so background load affects all alike. For each:

* accuracy on fmd's 138 validation photos (the split every maskwatch benchmark scores): mAP@0.5
  over the three classes, the two-class compliance mAP@0.5 (with_mask vs not compliant, the only
  classes the peers have), face AP@0.5 and recall, recall of faces under 16 px, and on ilc's
  305 validation photos (`maskwatch.datasets.hash_split`) mAP@0.5 and mask_worn_incorrectly AP;
* false faces per close-up photo (faces beyond the one face of each of 240 close-ups of the
  classification sets; `maskwatch.evaluation.closeups`);
* the median time per fmd photo (decode excluded) and per 640x480 frame (``--repeat`` rounds),
  and each as a speed ratio to AIZOO and Ultra-Light (peer ms / our ms: >= 1 is as fast or faster).

Writes benchmarks/results/detect.json, the table in docs/detection.md, the compact Pareto table in
README.md (between the bench_detect markers) and docs/img/pareto.png (ms per photo vs mAP@0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

#: (row name, `maskwatch.load` arguments, is it the default). "rfb" is the detector shipped in the package
#: (`maskwatch.detectors.rfb`); the default photo pipeline puts the crop classifier behind it
#: (`maskwatch.presets`); the others are the earlier stack's parts, kept for comparison.
CONFIGS: list[tuple[str, dict[str, Any], bool]] = [
    ("rfb + classifier's second opinion on faces rfb is < 90% sure of (2 passes)", {"detector": "rfb"}, True),
    ("rfb + classifier on every face, probabilities averaged", {"detector": "rfb", "classifier": "default",
                                                                "classifier_weight": 0.5}, False),
    ("rfb, 1 pass, long side >= 640 (at most 2x), score 0.3", {"detector": "rfb", "classifier": None}, False),
    ("rfb + second opinion, score 0.15 (more faces in crowds)", {"detector": "rfb", "score_threshold": 0.15}, False),
    ("rfb, 1 pass, score 0.15", {"detector": "rfb", "classifier": None, "score_threshold": 0.15}, False),
    ("rfb, 1 pass, score 0.5 (video preset)", {"detector": "rfb", "classifier": None, "score_threshold": 0.5}, False),
    ("rfb, 1 pass, long side >= 512", {"detector": "rfb", "classifier": None, "min_side": 512}, False),
    ("rfb, 1 pass, long side >= 800", {"detector": "rfb", "classifier": None, "min_side": 800}, False),
    ("rfb, 1 pass, scale 1 (no upscaling)", {"detector": "rfb", "classifier": None, "scale": 1.0}, False),
    ("rfb + classifier's labels alone (2 passes)", {"detector": "rfb", "classifier": "default"}, False),
    ("yunet+maskwatch + classifier (3 networks, earlier default)", {"detector": "yunet+maskwatch"}, False),
    ("centernet, 1 pass (earlier own detector)", {"detector": "maskwatch", "classifier": None}, False),
    ("yunet + classifier", {"detector": "yunet"}, False),
    ("ssd + classifier", {"detector": "ssd", "scale": 2.0}, False),
    ("haar + classifier", {"detector": "haar", "scale": 2.0}, False),
]
PEER_NAMES = {"AIZOO SSD 260": "aizoo", "ultralight RFB-640": "ultralight"}


def cpu_name() -> str:
    """The CPU model and whether it has VNNI (int8 dot products)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vnni = "VNNI" if any("vnni" in f for f in flags) else ("AVX2, no VNNI" if "avx2" in flags else "no AVX2")
    return f"{model} ({vnni})"


def interleaved(fns: dict[str, Callable[[np.ndarray], Any]], images: list[np.ndarray], warmup: int = 2
                ) -> tuple[dict[str, list[Any]], dict[str, list[float]]]:
    """Each function on each image, round-robin per image: ``(outputs, seconds)`` per function."""
    for fn in fns.values():
        for _ in range(warmup):
            fn(images[0])
    outs: dict[str, list[Any]] = {k: [] for k in fns}
    secs: dict[str, list[float]] = {k: [] for k in fns}
    for image in images:
        for key, fn in fns.items():
            t0 = time.perf_counter()
            out = fn(image)
            secs[key].append(time.perf_counter() - t0)
            outs[key].append(out)
    return outs, secs


def frame_640x480(images: list, max_faces: int = 5) -> tuple[np.ndarray, str]:
    """The validation photo with the most (<= max_faces) faces, resized to 640x480."""
    from maskwatch.imageio import read_image

    cands = sorted((im for im in images if 1 <= len(im.boxes) <= max_faces), key=lambda im: (-len(im.boxes), im.stem))
    im = cands[0]
    return cv2.resize(read_image(im.path), (640, 480), interpolation=cv2.INTER_LINEAR), f"{im.path.name} ({len(im.boxes)} faces)"


def metrics(gt: list, faces: list, secs: list[float]) -> dict[str, Any]:
    from maskwatch.evaluation.detection import ImageResult, detection_metrics

    m = detection_metrics([ImageResult(g, f, s) for g, f, s in zip(gt, faces, secs)])
    return {"mAP50": m["mAP50"], "mAP50_ci95": m.get("mAP50_ci95"), "mAP50_95": m.get("mAP50_95"),
            "compliance_mAP50": (m.get("compliance") or {}).get("mAP50"), "face_AP50": m["face_AP50"],
            "face_recall": m["face_recall"], "AP50": m["AP50"],
            "face_recall_tiny": (m["by_size"].get("tiny (<16)") or {}).get("face_recall")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--repeat", type=int, default=30, help="timed rounds on the 640x480 frame")
    p.add_argument("--limit", type=int, default=None, help="only N photos per dataset (quick check)")
    p.add_argument("--only", nargs="*", default=None, help="row names to run (default: all)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "detect.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "detection.md")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "pareto.png")
    args = p.parse_args()
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    import peers as peer_models
    from tqdm import tqdm

    import maskwatch
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.datasets import duplicate_groups, hash_split, load_voc
    from maskwatch.evaluation import load_split
    from maskwatch.evaluation.closeups import BENCHMARK_PER_CLASS, closeup_files
    from maskwatch.imageio import read_image

    _, fmd = load_split(args.shared / "data" / "fmd", "val", args.limit, layout=SHARED_LAYOUT)
    ilc_root = args.shared / "data" / "ilc"
    ilc = hash_split(load_voc(ilc_root), duplicate_groups(ilc_root), 0.2)[1][: args.limit]
    closeups = [read_image(f) for f, _ in closeup_files(args.shared / "data" / "crops", BENCHMARK_PER_CLASS)][: args.limit]
    fmd_images = [read_image(im.path) for im in fmd]
    ilc_images = [read_image(im.path) for im in ilc]
    frame, frame_name = frame_640x480(fmd)

    runners: dict[str, Callable[[np.ndarray], Any]] = {}
    detectors: dict[str, Any] = {}
    for name, kw, _ in CONFIGS:
        if args.only and name not in args.only:
            continue
        try:
            pipe = maskwatch.load(**kw)
        except (FileNotFoundError, maskwatch.MaskwatchError) as exc:
            print(f"skipped {name}: {exc}")
            continue
        runners[name] = pipe.detect
        detectors[name] = pipe
    for name, peer in peer_models.available(args.shared).items():  # at their documented thresholds
        runners[name] = peer.detect
        detectors[name] = peer

    rows = []
    print(f"{len(runners)} configurations on {len(fmd)} fmd + {len(ilc)} ilc photos, {len(closeups)} close-ups", flush=True)
    fmd_out, fmd_secs = interleaved(runners, fmd_images)
    ilc_out, _ = interleaved(runners, ilc_images)
    close_out, _ = interleaved(runners, closeups)
    frame_secs: dict[str, list[float]] = {k: [] for k in runners}
    for _ in tqdm(range(args.repeat), desc="640x480 frame", mininterval=5):
        for key, fn in runners.items():
            t0 = time.perf_counter()
            fn(frame)
            frame_secs[key].append(time.perf_counter() - t0)
    for name in runners:
        row = {"name": name, "peer": name not in {c[0] for c in CONFIGS},
               "default": any(c[0] == name and c[2] for c in CONFIGS),
               "fmd": metrics(fmd, fmd_out[name], fmd_secs[name]),
               "ilc": metrics(ilc, ilc_out[name], [0.0] * len(ilc)),
               "closeup_false_faces": float(np.mean([max(len(f) - 1, 0) for f in close_out[name]])) if closeups else None,
               "photo_ms": float(np.median(fmd_secs[name]) * 1000), "frame_ms": float(np.median(frame_secs[name]) * 1000)}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("name", "photo_ms", "frame_ms")} | {"mAP50": row["fmd"]["mAP50"]}), flush=True)
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        for peer, short in PEER_NAMES.items():
            if peer in by_name:
                row[f"photo_speed_vs_{short}"] = by_name[peer]["photo_ms"] / row["photo_ms"]
                row[f"frame_speed_vs_{short}"] = by_name[peer]["frame_ms"] / row["frame_ms"]
    result = {"fmd_split": "val (138 photos of the classifier's group split)", "n_fmd": len(fmd), "n_ilc": len(ilc),
              "n_closeups": len(closeups), "frame": frame_name, "repeat": args.repeat, "cpu_count": os.cpu_count(),
              "machine": cpu_name(), "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    if args.limit is None:
        args.markdown.write_text(splice(args.markdown.read_text() if args.markdown.exists() else "", markdown(result)))
        args.readme.write_text(splice(args.readme.read_text(), pareto_table(result)))
        plot(result, args.plot)
    print(f"wrote {args.json}")


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


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}x"


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Measured by `benchmarks/bench_detect.py` on {r['cpu_count']} cores of {r['machine']}: {r['n_fmd']} fmd "
             f"validation photos, {r['n_ilc']} ilc validation photos, {r['n_closeups']} close-ups; every row and peer "
             f"interleaved photo by photo. Speed = peer ms / our ms (>= 1: as fast or faster); frame: {r['frame']} "
             f"resized to 640x480, median of {r['repeat']} rounds.", "",
             "| pipeline | fmd mAP@0.5 | 2-class mAP@0.5 | face AP@0.5 | face recall | recall <16 px | AP with | AP without "
             "| AP incorrect | ilc mAP@0.5 | ilc AP incorrect | false faces / close-up | ms / photo | vs AIZOO | vs Ultra-Light "
             "| ms / 640x480 | vs AIZOO | vs Ultra-Light |",
             "|---|" + "---|" * 17]
    for row in r["rows"]:
        f, i = row["fmd"], row["ilc"]
        name = f"**{row['name']}** (default)" if row["default"] else (f"peer: {row['name']}" if row["peer"] else row["name"])
        lines.append(
            f"| {name} | {_f(f['mAP50'])} | {_f(f['compliance_mAP50'])} | {_f(f['face_AP50'])} | {_f(f['face_recall'])} "
            f"| {_f(f['face_recall_tiny'])} | {_f(f['AP50'].get('with_mask'))} | {_f(f['AP50'].get('without_mask'))} "
            f"| {_f(f['AP50'].get('mask_worn_incorrectly'))} | {_f(i['mAP50'])} | {_f(i['AP50'].get('mask_worn_incorrectly'))} "
            f"| {_f(row['closeup_false_faces'], 2)} | {_f(row['photo_ms'], 1)} | {_ratio(row.get('photo_speed_vs_aizoo'))} "
            f"| {_ratio(row.get('photo_speed_vs_ultralight'))} | {_f(row['frame_ms'], 1)} "
            f"| {_ratio(row.get('frame_speed_vs_aizoo'))} | {_ratio(row.get('frame_speed_vs_ultralight'))} |")
    lines += ["", "The peers have no mask_worn_incorrectly class (their 3-class mAP counts that class as 0); compare "
              "them on the 2-class column."]
    return "\n".join(lines) + "\n"


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on both time per photo and fmd mAP@0.5."""
    return [r for r in rows if not any(o["photo_ms"] <= r["photo_ms"] and o["fmd"]["mAP50"] > r["fmd"]["mAP50"]
                                       or o["photo_ms"] < r["photo_ms"] and o["fmd"]["mAP50"] >= r["fmd"]["mAP50"]
                                       for o in rows)]


def pareto_table(r: dict[str, Any]) -> str:
    front = {row["name"] for row in pareto(r["rows"])}
    lines = ["| pipeline | mAP@0.5 | 2-class mAP@0.5 | face recall | ms / photo | speed vs AIZOO | Pareto |",
             "|---|---|---|---|---|---|---|"]
    for row in sorted(r["rows"], key=lambda x: x["photo_ms"]):
        f = row["fmd"]
        name = f"**{row['name']}** (default)" if row["default"] else (f"peer: {row['name']}" if row["peer"] else row["name"])
        lines.append(f"| {name} | {_f(f['mAP50'])} | {_f(f['compliance_mAP50'])} | {_f(f['face_recall'])} "
                     f"| {_f(row['photo_ms'], 1)} | {_ratio(row.get('photo_speed_vs_aizoo'))} | {'yes' if row['name'] in front else ''} |")
    lines += ["", f"*fmd validation photos ({r['n_fmd']}), {r['cpu_count']} cores of {r['machine']}; "
              "`benchmarks/bench_detect.py`, all rows in [docs/detection.md](docs/detection.md).*"]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    front = sorted(pareto(r["rows"]), key=lambda x: x["photo_ms"])
    ax.plot([x["photo_ms"] for x in front], [x["fmd"]["mAP50"] for x in front], "--", color="0.7", zorder=0,
            label="Pareto front")
    for row in r["rows"]:
        colour = "tab:red" if row["default"] else ("tab:gray" if row["peer"] else "tab:blue")
        ax.scatter(row["photo_ms"], row["fmd"]["mAP50"], s=60 if row["default"] else 30, color=colour, zorder=2)
        ax.annotate(row["name"].split(" (")[0].replace(", long side", ","), (row["photo_ms"], row["fmd"]["mAP50"]),
                    textcoords="offset points", xytext=(5, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("median ms per fmd validation photo (log scale)")
    ax.set_ylabel("mAP@0.5, 3 classes (fmd validation)")
    ax.set_title(f"Speed vs accuracy ({r['cpu_count']} cores of {r['machine']})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
