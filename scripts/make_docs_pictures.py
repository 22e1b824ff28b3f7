"""Regenerate the annotated pictures of the README (docs/img) with the shipped default pipeline.

docs/img/three_ways_annotated.jpg: `maskwatch detect examples/three_ways.jpg` (the project's own photo).
docs/img/crowd_annotated.jpg: `maskwatch detect --header examples/crowd.jpg`, the synthetic crowd of
scripts/make_examples.py (the project's own faces only); prints how many of the pasted faces were found
and labelled as pasted (a detection matches a pasted face at IoU >= 0.3).
    python scripts/make_docs_pictures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from make_examples import crowd_layout

import maskwatch
from maskwatch.ops import box_iou

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    pipe = maskwatch.load()
    image = maskwatch.read_image(ROOT / "examples" / "three_ways.jpg")
    maskwatch.write_image(ROOT / "docs" / "img" / "three_ways_annotated.jpg", maskwatch.annotate(image, pipe.detect(image)))
    image = maskwatch.read_image(ROOT / "examples" / "crowd.jpg")
    faces = pipe.detect(image)
    maskwatch.write_image(ROOT / "docs" / "img" / "crowd_annotated.jpg", maskwatch.annotate(image, faces, header=True))
    pasted = crowd_layout()
    iou = box_iou(np.array([f["box"] for f in pasted], np.float32), faces.xyxy)
    hit = iou.max(axis=1) >= 0.3 if len(faces) else np.zeros(len(pasted), bool)
    right = [hit[i] and faces.label[iou[i].argmax()] == f["label"] for i, f in enumerate(pasted)]
    sizes = [round(f["box"][2] - f["box"][0]) for f in pasted]
    missed = sorted(s for s, h in zip(sizes, hit) if not h)
    print(f"crowd.jpg: {len(faces)} faces detected, {int(hit.sum())} of {len(pasted)} pasted faces found "
          f"({sum(right)} with the pasted label), missed face widths {missed}; {faces.counts().to_dict()}")


if __name__ == "__main__":
    main()
