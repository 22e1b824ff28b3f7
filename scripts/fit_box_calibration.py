"""Fit the box calibrations of calibrations in the registry entries of YuNet and SSD (`maskwatch.detectors.yunet`, `.ssd`) on fmd.

    MASKWATCH_MODELS=../shared/models python scripts/fit_box_calibration.py --shared ../shared

Runs each detector (uncalibrated, scale 2, low threshold) on the *training* side of the default
classifier's split of fmd — never the validation images the benchmarks score — and prints the median
``(dx, dy, sw, sh)`` that moves its boxes onto the annotations (`fit_box_calibration`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--detectors", nargs="+", default=["yunet", "ssd"])
    p.add_argument("--scale", type=float, default=2.0)
    args = p.parse_args()
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    from tqdm import tqdm

    from maskwatch.detectors import create_detector, fit_box_calibration
    from maskwatch.cli.layout import SHARED_LAYOUT
    from maskwatch.datasets import classifier_split_images
    from maskwatch.imageio import read_image
    from maskwatch.datasets import load_voc

    data = args.shared / "data" / "fmd"
    wanted = {Path(p).resolve() for p in classifier_split_images(data, SHARED_LAYOUT, "train")}
    train = [im for im in load_voc(data) if im.path.resolve() in wanted and len(im.boxes)]
    for name in args.detectors:
        det = create_detector(name, scale=args.scale, score_threshold=0.3)
        pairs = [(det.detect(read_image(im.path)).xyxy, im.boxes) for im in tqdm(train, desc=name)]
        print(f'"{name}": ({", ".join(f"{v:.3f}" for v in fit_box_calibration(pairs))}),  # {len(train)} photos')


if __name__ == "__main__":
    main()
