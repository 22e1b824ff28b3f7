"""Generate the example images shipped in examples/ (the project's own work, no external data).

examples/astronaut.jpg is scikit-image's public-domain photo of astronaut Eileen Collins (NASA).
examples/three_ways.jpg puts her face three times side by side: as is, with a surgical-style mask
drawn over nose and mouth, and with the same mask pulled below the nose — one face per label.
    python scripts/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskwatch import create_detector, write_image

ROOT = Path(__file__).resolve().parents[1]


def draw_mask(face: np.ndarray, landmarks: np.ndarray, box: np.ndarray, over_nose: bool) -> np.ndarray:
    """Draw a light-blue pleated mask from landmarks; ``over_nose=False`` leaves the nose out."""
    out = face.copy()
    (rex, rey), (lex, ley), (nx, ny), (rmx, rmy), (lmx, lmy) = landmarks
    x1, y1, x2, y2 = box
    eye_y, mouth_y = (rey + ley) / 2, (rmy + lmy) / 2
    top = eye_y + 0.45 * (ny - eye_y) if over_nose else ny + 0.45 * (mouth_y - ny)
    bottom = y2 + 0.02 * (y2 - y1)
    left, right = x1 + 0.04 * (x2 - x1), x2 - 0.04 * (x2 - x1)
    pts = np.array([[left, top + 0.15 * (bottom - top)], [nx, top], [right, top + 0.15 * (bottom - top)],
                    [right - 0.06 * (x2 - x1), bottom - 0.2 * (bottom - top)], [nx, bottom],
                    [left + 0.06 * (x2 - x1), bottom - 0.2 * (bottom - top)]], np.int32)
    cv2.fillPoly(out, [pts], (168, 206, 232), cv2.LINE_AA)
    for k in (0.35, 0.55, 0.75):  # pleats
        y = int(top + k * (bottom - top))
        cv2.line(out, (int(left + 8), y), (int(right - 8), y), (140, 180, 210), 2, cv2.LINE_AA)
    for side in (left, right):  # ear loops
        cv2.line(out, (int(side), int(top + 0.2 * (bottom - top))), (int(side), int(eye_y)), (235, 235, 235), 2, cv2.LINE_AA)
    return out


def main() -> None:
    from skimage import data

    photo = data.astronaut()
    out = ROOT / "examples"
    write_image(out / "astronaut.jpg", photo)
    faces = create_detector("yunet").detect(photo)
    box, lms = faces.xyxy[0], faces.landmarks[0]
    x1, y1, x2, y2 = box.astype(int)
    pad = int(0.6 * (x2 - x1))
    crop = (slice(max(0, y1 - pad), y2 + pad), slice(max(0, x1 - pad), x2 + pad))
    shift = np.array([crop[1].start, crop[0].start], np.float32)
    tiles = [photo, draw_mask(photo, lms, box, True), draw_mask(photo, lms, box, False)]
    tiles = [t[crop] for t in tiles]
    panel = np.concatenate([np.pad(t, ((8, 8), (8, 8), (0, 0)), constant_values=245) for t in tiles], axis=1)
    write_image(out / "three_ways.jpg", panel)
    print("wrote", out / "astronaut.jpg", out / "three_ways.jpg", "face offset", shift)


if __name__ == "__main__":
    main()
