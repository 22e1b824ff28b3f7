"""Image I/O: the only place where files become RGB uint8 arrays (and BGR is handled).

`read_image` accepts a path or encoded bytes, applies EXIF orientation, converts grayscale,
RGBA, 16-bit and CMYK images to RGB uint8, rejects empty, truncated and non-image files with an
`ImageReadError` naming the file, and bounds memory on huge images.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .errors import ImageReadError, ImageTooLargeError

log = logging.getLogger(__name__)

#: Images above this many pixels are downscaled while decoding (JPEG) or refused (others).
DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pnm"}

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview]


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF marker, without decoding."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG from its header, or ``None`` for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _is_truncated(data: bytes) -> bool:
    if data[:2] == b"\xff\xd8":  # JPEG must end with the EOI marker (allow a little padding)
        return b"\xff\xd9" not in data[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    return False


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8 ``(H, W, 3)``; see module docstring."""
    if len(data) == 0:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    if _is_truncated(data):
        raise ImageReadError(f"{name}: truncated image file")
    flags = cv2.IMREAD_COLOR  # applies EXIF orientation, drops alpha, 16-bit -> 8-bit, gray -> 3ch
    size = image_size_from_header(data)
    if size is not None and size[0] * size[1] > max_pixels:
        w, h = size
        factor = next((f for f in (2, 4, 8) if (w / f) * (h / f) <= max_pixels), None)
        if data[:2] != b"\xff\xd8" or factor is None:
            raise ImageTooLargeError(
                f"{name}: image is {w}x{h} ({w * h / 1e6:.0f} MP), above the limit of "
                f"{max_pixels / 1e6:.0f} MP; downscale it first or raise max_pixels"
            )
        flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
        log.warning("%s: %dx%d image decoded at 1/%d scale to bound memory", name, w, h, factor)
    buf = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buf, flags)
    if bgr is None:
        raise ImageReadError(f"{name}: not a readable image (corrupt or unsupported format)")
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    if bgr.dtype != np.uint8:  # defensive: IMREAD_COLOR already gives 8 bits
        bgr = (bgr / 257).astype(np.uint8) if bgr.dtype == np.uint16 else bgr.astype(np.uint8)
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise ImageTooLargeError(f"{name}: image is {bgr.shape[1]}x{bgr.shape[0]}, above {max_pixels} pixels")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file (or encoded bytes) as RGB uint8 ``(H, W, 3)``.

    Raises:
        ImageReadError: missing path, a folder, empty, truncated, corrupt or non-image data.
        ImageTooLargeError: more than ``max_pixels`` and not downscalable while decoding.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), max_pixels=max_pixels)
    path = Path(source)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def encode_image(image: np.ndarray, ext: str = ".jpg", quality: int = 92) -> bytes:
    """Encode an RGB uint8 image to bytes (``.jpg`` or ``.png``)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode image as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 92) -> Path:
    """Write an RGB uint8 image; the format follows the file suffix. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(image, path.suffix or ".jpg", quality))
    return path


def rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Validate an in-memory image of the public API: RGB uint8 ``(H, W, 3)``."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or a path, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageReadError(f"image must be an RGB uint8 array of shape (H, W, 3), got {image.dtype} {image.shape}")
    return image


def iter_image_paths(inputs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, image suffixes only) and glob patterns, in order.

    Paths that do not exist are kept, so that the caller reports them as errors.
    """
    import glob

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif not path.exists() and any(ch in item for ch in "*?["):
            out.extend(sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file()))
        else:
            out.append(path)
    return out
