"""Test media for the web app: a short clip and a fake camera file of examples/three_ways.jpg (three
people: with a mask, without one, wearing it incorrectly), panning slowly to the right. The fixtures
are in tests/web/conftest.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THREE_WAYS = ROOT / "examples" / "three_ways.jpg"
#: the three people of three_ways.jpg, one per label
THREE_WAYS_PEOPLE = {"with_mask": 1, "without_mask": 1, "mask_worn_incorrectly": 1}
CLIP_FRAMES, CLIP_FPS = 24, 12.0


def panning_frames(n: int = CLIP_FRAMES, step: int = 2) -> list[np.ndarray]:
    """``n`` RGB 740x240 frames: three_ways.jpg on a grey border, moved ``step`` px right per frame."""
    from maskwatch.imageio import read_image

    photo = read_image(THREE_WAYS)[:238, :640]
    canvas = np.full((240, 740, 3), 110, np.uint8)
    canvas[1:239, 50:690] = photo
    return [np.roll(canvas, step * i - n, axis=1) for i in range(n)]


def write_clip(path: Path, frames: list[np.ndarray], fps: float = CLIP_FPS) -> Path:
    """An MP4 (MPEG-4 Part 2, as OpenCV writes it: what a phone upload looks like to the decoder)."""
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert out.isOpened()
    for frame in frames:
        out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out.release()
    return path


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """A YUV4MPEG2 file (4:2:0) for Chromium's --use-file-for-fake-video-capture."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
