"""Which face-pretrained network to fine-tune: the Ultra-Light RFB SSD or YuNet, a few epochs each.

    python benchmarks/bench_arch.py --shared ../shared [--epochs 4]

Both start from their published face-detector weights and are fine-tuned by the same loop
(`maskwatch.train.rfb.loop.fit`: the same photos, sampling, augmentation, schedule, batch size and
input size; `scripts/build_rfb.py --arch rfb|yunet`), then scored on the same validation photos
(fmd's 138 + ilc's 305) by the same NumPy decoding they would ship with. Epoch 0 is the published
network before fine-tuning. Runs already in RUNS/cmp-<arch> are read, not retrained.
Writes benchmarks/results/arch.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("rfb", "yunet")
KEYS = ("mAP50", "face_AP50", "face_recall")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--runs", type=Path, default=ROOT / "runs")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "arch.json")
    args = p.parse_args()
    out: dict = {"epochs": args.epochs, "archs": {}}
    for arch in ARCHS:
        run = args.runs / f"cmp-{arch}"
        if not (run / "history.json").exists() or json.loads((run / "history.json").read_text())[-1]["epoch"] < args.epochs:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "build_rfb.py"), "--shared", str(args.shared),
                            "--run", str(run), "--arch", arch, "--epochs", str(args.epochs),
                            "--eval-every", str(args.epochs), "--no-progress"], check=True)
        history = json.loads((run / "history.json").read_text())
        build = json.loads((run / "build.json").read_text()) if (run / "build.json").exists() else {}
        rows = {}
        for row in history:
            if "fmd" in row:
                rows[row["epoch"]] = {d: {**{k: row[d][k] for k in KEYS}, "AP50": row[d]["AP50"]}
                                      for d in ("fmd", "ilc") if d in row}
        out["archs"][arch] = {"validation": rows, "train_seconds": round(sum(r.get("train_seconds", 0) for r in history), 1),
                              "cpu": build.get("cpu"), "device": build.get("device")}
    final = {a: out["archs"][a]["validation"][args.epochs] for a in ARCHS}
    out["mean_mAP50"] = {a: round((final[a]["fmd"]["mAP50"] + final[a]["ilc"]["mAP50"]) / 2, 4) for a in ARCHS}
    out["better"] = max(ARCHS, key=lambda a: out["mean_mAP50"][a])
    args.json.write_text(json.dumps(out, indent=1))
    for a in ARCHS:
        for ep, r in out["archs"][a]["validation"].items():
            print(f"{a:6s} epoch {ep}: " + "  ".join(f"{d} mAP {r[d]['mAP50']:.3f} face AP {r[d]['face_AP50']:.3f} "
                                                      f"recall {r[d]['face_recall']:.3f}" for d in r))
    print("better by mean validation mAP@0.5:", out["better"], out["mean_mAP50"])


if __name__ == "__main__":
    main()
