"""Rebuild maskwatch's single-pass face + mask detector (the RFB SSD) from the shared data (resumable).

    python scripts/build_rfb.py --shared ../shared [--epochs 25] [--install]

1. Splits: fmd's evaluation split (the 138 validation photos every benchmark scores) is held out;
   ilc is split by a hash of its duplicate groups (20% validation, `maskwatch.datasets.hash_split`).
2. Box style: ilc's boxes are looser than fmd's. Both styles are measured against one reference
   detector (YuNet, `maskwatch.calibration.fit_box_calibration` on each training side) and ilc's
   boxes are moved onto fmd's style before training (`box_style_transform`), so the detector learns
   one box style, fmd's.
3. Fine-tunes the published Ultra-Light RFB-640 masked-face weights (WIDER FACE + MAFA) with a
   class head for with_mask / without_mask / mask_worn_incorrectly initialised from its masked_face
   / face scores (`maskwatch.train.rfb.loop.fit`): class-balanced sampling, face size drawn
   independently of the class, mosaic, copy-paste of incorrectly worn faces, flip, colour, blur.
   Re-running continues from RUN/last.pt. The GPU is used where there is one. --init FILE.onnx
   starts from an exported model instead (the shipped one: further fine-tuning once its run folder
   is gone; `maskwatch.train.rfb.model.from_onnx`).
4. Exports RUN/best.pt to ONNX (spec in the metadata, checked against PyTorch), quantises it to int8
   with 7-bit weights (`maskwatch.train.export.quantize_qdq`), and with --install copies the fp32
   file (the shipped one: on the 2-core CPUs measured, int8 was slower and 0.04 mAP@0.5 worse,
   benchmarks/bench_detect.py) or, with --install-precision int8, the int8 file into
   src/maskwatch/models/. Writes RUN/build.json: timings, device, CPU, validation numbers.
--arch yunet fine-tunes the YuNet candidate with the same loop and data instead (compared by its
validation history in RUN/history.json; not exported).
The data are read in place and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "maskwatch" / "models"
MODEL_NAME = "maskwatch_rfb.onnx"
PRETRAINED = {"rfb": "ultralight_RFB-640-masked_face-v2.pth", "yunet": "yunet_s.pth"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ilc_style(shared: Path, run: Path, train_names: list[str]) -> tuple:
    """(ilc calibration, fmd calibration) of YuNet, measured once and kept in RUN/box_style.json."""
    cache = run / "box_style.json"
    if cache.exists():
        return tuple(tuple(v) for v in json.loads(cache.read_text()))
    from tqdm import tqdm

    from maskwatch.datasets import load_voc
    from maskwatch.detectors import create_detector, entry, fit_box_calibration
    from maskwatch.imageio import read_image

    det = create_detector("yunet", scale=2.0, score_threshold=0.3)
    wanted = set(train_names)
    images = [im for im in load_voc(shared / "data" / "ilc") if im.path.name in wanted]
    pairs = [(det.detect(read_image(im.path)).xyxy, im.boxes) for im in tqdm(images, desc="YuNet on ilc (box style)", mininterval=10)]
    style = (fit_box_calibration(pairs), entry("yunet").calibration)
    cache.write_text(json.dumps(style))
    return style


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "rfb")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--steps", type=int, default=60, help="batches per epoch")
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--workers", type=int, default=-1,
                   help="processes making training batches (default: none on a CPU, all cores but one beside a GPU)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--assign", choices=("iou", "atss"), default="iou",
                   help="which priors learn each face: upstream's IoU matching, or ATSS (more for small faces)")
    p.add_argument("--version", default="1", help="model version stored in its spec")
    p.add_argument("--init", type=Path, default=None,
                   help="continue from an exported RFB ONNX file (the shipped model, say) instead of the "
                        "published weights: BatchNorms rebuilt from training inputs, a new schedule")
    p.add_argument("--max-images", type=int, default=0, help="tests: photos per dataset")
    p.add_argument("--skip-train", action="store_true", help="export RUN/best.pt only")
    p.add_argument("--install", action="store_true", help=f"copy the model to src/maskwatch/models/{MODEL_NAME}")
    p.add_argument("--install-precision", choices=("fp32", "int8"), default="fp32",
                   help="which export --install copies (default: fp32, measured faster here)")
    p.add_argument("--arch", choices=("rfb", "yunet"), default="rfb",
                   help="network to fine-tune: the Ultra-Light RFB SSD (shipped) or the YuNet candidate (compared)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.datasets import duplicate_groups, hash_split, load_voc
    from maskwatch.evaluation import load_split
    from maskwatch.train.engine import pick_device
    from maskwatch.train.rfb.loop import RFB, RFBConfig, default_workers, fit

    args.run.mkdir(parents=True, exist_ok=True)
    fmd, ilc = args.shared / "data" / "fmd", args.shared / "data" / "ilc"
    _, fmd_val = load_split(fmd, "val", layout=SHARED_LAYOUT)
    cfg = RFBConfig(output=str(args.run), fmd=str(fmd), ilc=str(ilc), fmd_val=sorted(im.path.name for im in fmd_val),
                    pretrained=str(args.shared / "models" / PRETRAINED[args.arch]),
                    init=str(args.init) if args.init else None, lr=args.lr, version=args.version,
                    size=args.size, batch_size=args.batch_size, epochs=args.epochs, steps_per_epoch=args.steps,
                    eval_every=args.eval_every, threads=args.threads, workers=args.workers, max_images=args.max_images,
                    assign=args.assign)
    ilc_train, _ = hash_split(load_voc(ilc), duplicate_groups(ilc), cfg.val_fraction)
    cfg.ilc_style = ilc_style(args.shared, args.run, [im.path.name for im in ilc_train])
    logging.info("ilc -> fmd box style (YuNet calibrations): %s", cfg.ilc_style)
    build = {"device": str(pick_device()), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
             "batch_workers": default_workers(pick_device()) if args.workers < 0 else args.workers}
    t0 = time.time()
    if not args.skip_train:
        if args.arch == "yunet":
            from maskwatch.train.yunet.loop import YUNET as recipe
        else:
            recipe = RFB
        fit(cfg, progress=not args.no_progress, recipe=recipe)
        history = json.loads((args.run / "history.json").read_text())
        build["train_seconds"] = round(sum(row.get("train_seconds", 0) for row in history), 1)  # all sessions
        build["wall_seconds_this_session"] = round(time.time() - t0, 1)
    if args.arch != "rfb":  # the candidate is compared by its validation history, not shipped
        (args.run / "build.json").write_text(json.dumps(build, indent=1))
        return
    from maskwatch.train.rfb.export import export_onnx, quantize

    fp32 = args.run / "maskwatch_rfb_fp32.onnx"
    build["export"] = export_onnx(args.run / "best.pt", fp32)
    int8 = args.run / MODEL_NAME
    build["int8"] = quantize(fp32, int8, [im for im in load_voc(fmd) if im.path.name not in set(cfg.fmd_val)],
                             min_side=cfg.min_side)
    (args.run / "build.json").write_text(json.dumps(build, indent=1))
    logging.info("build: %s", json.dumps(build))
    if args.install:
        shutil.copy(fp32 if args.install_precision == "fp32" else int8, MODELS / MODEL_NAME)
        logging.info("installed %s", MODELS / MODEL_NAME)


if __name__ == "__main__":
    main()
