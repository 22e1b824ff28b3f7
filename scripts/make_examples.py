"""Generate the example images shipped in examples/ (the project's own work, no external data).

examples/astronaut.jpg is scikit-image's public-domain photo of astronaut Eileen Collins (NASA).
examples/three_ways.jpg puts her face three times side by side: as is, with a surgical-style mask
drawn over nose and mouth, and with the same mask pulled below the nose — one face per label.
examples/crowd.jpg is a synthetic crowd made of those three faces only: 40 heads cut from the three
tiles, some mirrored, pasted in rows that recede like a crowd (faces 150 px wide in front down to
10 px at the back) on a heavily blurred copy of the astronaut photo. `crowd_layout` says where each
face went and which label it has, so the detector can be scored against it.
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


#: Rows of the synthetic crowd, front (bottom) to back (top): (face width in px, faces in the row).
CROWD_ROWS = ((150, 3), (104, 4), (74, 5), (52, 6), (37, 6), (26, 6), (18, 5), (13, 3), (10, 2))
CROWD_SIZE = (960, 720)  # width, height
#: The label of each tile of three_ways.jpg, left to right.
TILE_LABELS = ("without_mask", "with_mask", "mask_worn_incorrectly")
HEAD = (0.35, 0.55, 0.3)  # head crop around the face box: side, top, bottom, as fractions of its width


def crowd_layout(seed: int = 11) -> list[dict]:
    """Where each face of the synthetic crowd goes, back to front: ``box`` (x1, y1, x2, y2 of the face
    in the crowd picture), ``tile`` (index into `TILE_LABELS`), ``label`` and ``flip``. Pure and
    deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    width, height = CROWD_SIZE
    faces, y = [], height - 10
    for row, (size, count) in enumerate(CROWD_ROWS):  # front row first, each further row higher up
        bottom = y
        slot = width / count
        for i in range(count):
            w = size * rng.uniform(0.92, 1.08)
            h = w * 1.26  # the aspect of the face box yunet finds on the astronaut
            cx = slot * (i + 0.25 + 0.5 * (row % 2)) + rng.uniform(-0.1, 0.1) * slot  # staggered
            cx = float(np.clip(cx, w * (HEAD[0] + 0.5), width - w * (HEAD[0] + 0.5)))
            y2 = bottom - w * HEAD[2] - rng.uniform(0, 0.1) * size
            tile = int(rng.integers(len(TILE_LABELS)))
            faces.append({"box": (cx - w / 2, y2 - h, cx + w / 2, y2), "tile": tile,
                          "label": TILE_LABELS[tile], "flip": bool(rng.integers(2))})
        y = bottom - 1.4 * size  # the next row peeks out between and above this row's heads
    return faces[::-1]  # paint the back rows first


def make_crowd(tiles: list[np.ndarray], boxes: list[np.ndarray], background: np.ndarray, seed: int = 11) -> np.ndarray:
    """Paste the faces of ``tiles`` (their face boxes in ``boxes``) where `crowd_layout` says, on a
    blurred ``background``; RGB uint8 of `CROWD_SIZE`."""
    width, height = CROWD_SIZE
    canvas = cv2.resize(background, (width, height), interpolation=cv2.INTER_AREA)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 40).astype(np.float32)
    heads = []
    for tile, (x1, y1, x2, y2) in zip(tiles, boxes):
        fw = x2 - x1
        top, left = int(max(0, y1 - HEAD[1] * fw)), int(max(0, x1 - HEAD[0] * fw))
        head = tile[top:int(y2 + HEAD[2] * fw), left:int(x2 + HEAD[0] * fw)]
        heads.append((head, (x1 - left) / fw, (y1 - top) / fw, fw))  # crop, face offset in face widths
    for face in crowd_layout(seed):
        head, ox, oy, fw = heads[face["tile"]]
        if face["flip"]:
            head = head[:, ::-1]
            ox = head.shape[1] / fw - ox - 1
        bx1, by1, bx2, _ = face["box"]
        scale = (bx2 - bx1) / fw
        hw, hh = max(2, round(head.shape[1] * scale)), max(2, round(head.shape[0] * scale))
        small = cv2.resize(np.ascontiguousarray(head), (hw, hh), interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = np.zeros((hh, hw), np.float32)  # a soft oval: no square edges around the head
        cv2.ellipse(alpha, (hw // 2, hh // 2), (int(hw * 0.42), int(hh * 0.47)), 0, 0, 360, 1.0, -1)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.6, hw * 0.04))[..., None]
        x, y = round(bx1 - ox * (bx2 - bx1)), round(by1 - oy * (bx2 - bx1))
        cx1, cy1, cx2, cy2 = max(0, x), max(0, y), min(width, x + hw), min(height, y + hh)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        sub, a = small[cy1 - y:cy2 - y, cx1 - x:cx2 - x], alpha[cy1 - y:cy2 - y, cx1 - x:cx2 - x]
        canvas[cy1:cy2, cx1:cx2] = a * sub + (1 - a) * canvas[cy1:cy2, cx1:cx2]
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


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
    face_box = box - np.concatenate([shift, shift])
    crowd = make_crowd(tiles, [face_box] * len(tiles), photo)
    write_image(out / "crowd.jpg", crowd)
    print("wrote", out / "astronaut.jpg", out / "three_ways.jpg", out / "crowd.jpg", "face offset", shift,
          f"{len(crowd_layout())} faces in the crowd")


if __name__ == "__main__":
    main()
