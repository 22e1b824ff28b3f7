"""Builders of bad and unusual image files, shared by the image I/O and CLI tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 92) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height, with no pixel data (to test refusal cheaply)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def exif_rotated(path: Path, upright: np.ndarray) -> Path:
    """A phone-style JPEG: pixels stored rotated 90 degrees, EXIF Orientation=6 to show upright."""
    from PIL import Image

    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 90 degrees counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    stored.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def cmyk_jpeg(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=92)
    return path


def bad_files(folder: Path, good: np.ndarray) -> dict[str, Path]:
    """name -> file for every unreadable input the CLI must report and skip."""
    folder.mkdir(parents=True, exist_ok=True)
    full = write_jpeg(folder / "full.jpg", good).read_bytes()
    files = {
        "missing": folder / "does_not_exist.jpg",
        "empty": folder / "empty.jpg",
        "truncated": folder / "truncated.jpg",
        "corrupt": folder / "corrupt.png",
        "text": folder / "notes.jpg",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(full[: len(full) // 2])
    png = bytearray(cv2.imencode(".png", good)[1].tobytes())
    start = png.index(b"IDAT") + 8
    png[start : start + 200] = bytes(range(200))  # scrambled compressed pixel data, intact header
    files["corrupt"].write_bytes(bytes(png))
    files["text"].write_text("this is not an image\n")
    (folder / "full.jpg").unlink()
    return files
