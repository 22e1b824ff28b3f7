"""Regenerate the annotated pictures of the README (docs/img) with the shipped default pipeline.

docs/img/three_ways_annotated.jpg: `maskwatch detect examples/three_ways.jpg` (the project's own photo).
docs/img/crowd_annotated.jpg: `maskwatch detect --header` on fmd's maksssksksss11.jpg, a crowd photo
of the Face Mask Detection dataset (andrewmvd on Kaggle, CC0 1.0; read from ../shared/data/fmd, skipped
when it is absent), enlarged 2x pixel by pixel after annotating so the README shows it crisp.
    python scripts/make_docs_pictures.py
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

import maskwatch

ROOT = Path(__file__).resolve().parents[1]
FMD = Path(os.environ.get("MASKWATCH_SHARED", ROOT.parent / "shared")) / "data" / "fmd" / "images"


def main() -> None:
    pipe = maskwatch.load()
    image = maskwatch.read_image(ROOT / "examples" / "three_ways.jpg")
    maskwatch.write_image(ROOT / "docs" / "img" / "three_ways_annotated.jpg", maskwatch.annotate(image, pipe.detect(image)))
    crowd = FMD / "maksssksksss11.jpg"
    if not crowd.is_file():
        print(f"{crowd} not found: the crowd picture is left as it is")
        return
    image = maskwatch.read_image(crowd)
    faces = pipe.detect(image)
    annotated = maskwatch.annotate(image, faces, header=True)
    big = cv2.resize(annotated, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    maskwatch.write_image(ROOT / "docs" / "img" / "crowd_annotated.jpg", big)
    print(f"{crowd.name}: {len(faces)} faces, {faces.counts().to_dict()}")


if __name__ == "__main__":
    main()
