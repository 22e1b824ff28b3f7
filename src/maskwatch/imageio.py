"""Image I/O: the only place where files become RGB uint8 arrays (and BGR is handled).

`read_image` accepts a path or encoded bytes, applies EXIF orientation, converts grayscale,
RGBA, 16-bit and CMYK images to RGB uint8, rejects empty, truncated and non-image files with an
`ImageReadError` naming the file, and bounds memory on huge images. `decode_image` is the one
decoding gate of the CLI, the API, the web app and the training data: the declared size of every
accepted format is checked before a decoder allocates, and no decoder error escapes untyped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
import struct
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .errors import ImageReadError, ImageTooLargeError
from .imageheader import (
    IMAGE_FORMATS,
    SNIFF_BYTES,
    UNSUPPORTED_FORMATS,
    VIDEO_FORMATS,
    ImageHeader,
    jpeg_layout,
    read_header,
    sniff,
)

log = logging.getLogger(__name__)

#: Images above this many pixels are downscaled while decoding (baseline JPEG) or refused (others).
DEFAULT_MAX_PIXELS = 50_000_000
#: A decoder may hold at most this many bytes per pixel of ``max_pixels`` (progressive JPEG's
#: coefficients, float HDR samples, ...): what bounds peak memory whatever the format.
DECODE_BYTES_PER_PIXEL = 9
#: Files larger than this are refused before they are read (a 50 MP photo is well below it).
DEFAULT_MAX_FILE_BYTES = 256 * 2**20
#: File suffixes of images (for glob patterns and the training data); folders are searched by content.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".gif",
                  ".avif", ".jp2", ".j2k", ".pgm", ".ppm", ".pnm", ".pbm", ".pam", ".pfm", ".sr", ".ras", ".hdr",
                  ".pic"}

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview]


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image declares in its header, or ``None`` if it is not a readable image."""
    try:
        header = read_header(data)
    except ImageReadError:
        return None
    return header.width, header.height


def display_name(name: str | os.PathLike) -> str:
    """A file name safe to print on one line: undecodable bytes as ``\\xNN``, control characters escaped.

    >>> display_name("a\\nb.jpg")
    'a\\\\nb.jpg'
    """
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _is_truncated(data: bytes, kind: str) -> bool:
    """A JPEG without an end marker after its first scan, or a PNG whose chunks stop before IEND.

    Data after a complete image (a phone's "motion photo" video, a ZIP) is not truncation.
    """
    if kind == "jpeg":
        layout = jpeg_layout(data)
        return layout is None or data.find(b"\xff\xd9", layout[4]) < 0
    if kind == "png":
        i, n = 8, len(data)
        while i + 8 <= n:
            (length,) = struct.unpack(">I", data[i : i + 4])
            if data[i + 4 : i + 8] == b"IEND":
                return False
            i += 12 + length
        return True
    return False


_STDERR_LOCK = threading.RLock()
#: Held while file descriptor 2 is redirected to catch the decoders' messages: a thread that writes to
#: stderr while others decode takes it too (`maskwatch.batch.LocalEngine` lends it to tqdm and logging).
STDERR_LOCK = _STDERR_LOCK
_CV_LOG_PREFIX = re.compile(r"^\[\s*\w+:\d+@[\d.]+\] global \S+ \S+ (?:imdecode_\(''\): )?")
_CV_SOURCE = re.compile(r"OpenCV\([\d.]+\) \S+: error: \(-?\d+:[^)]*\) ")


@contextlib.contextmanager
def _decoder_messages():
    """Catch what the C decoders (libjpeg, libpng, libtiff, OpenCV's log) print on stderr meanwhile,
    into the yielded list (one cleaned line each), instead of letting them reach the terminal
    unattributed. Serialised: file descriptor 2 belongs to the whole process."""
    lines: list[str] = []
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to catch
            yield lines
            return
        # a memory-backed file where there is one (nothing of an upload touches the disk)
        sink = os.fdopen(os.memfd_create("maskwatch-decoder-messages"), "w+b") if hasattr(os, "memfd_create") \
            else tempfile.TemporaryFile()
        with sink:
            sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read(16384).decode("utf-8", "replace")
                for line in text.splitlines():
                    line = _CV_SOURCE.sub("", _CV_LOG_PREFIX.sub("", line.strip())).strip()
                    if line:
                        lines.append(line)


def _summary(lines: list[str], keep: int = 3) -> str:
    """The first ``keep`` distinct messages on one line, and how many more there were."""
    distinct = list(dict.fromkeys(line[:160] for line in lines))
    more = f" (+{len(lines) - keep} more)" if len(distinct) > keep else ""
    return " | ".join(distinct[:keep]) + more


def check_decodable(header: ImageHeader, name: str, max_pixels: int) -> int:
    """The JPEG reduction (1, 2, 4 or 8) at which ``header``'s image fits ``max_pixels``.

    Raises:
        ImageTooLargeError: it declares more than ``max_pixels`` and cannot be downscaled while
            decoding, or its decoder would need more than `DECODE_BYTES_PER_PIXEL` x ``max_pixels``.
    """
    w, h = header.width, header.height
    factor = 1
    if header.pixels > max_pixels:
        factor = next((f for f in (2, 4, 8) if header.downscalable and (w / f) * (h / f) <= max_pixels), 0)
        if not factor:
            how = "" if header.kind != "jpeg" else " (progressive or multi-scan JPEGs cannot be downscaled while decoding)"
            raise ImageTooLargeError(
                f"{display_name(name)}: image is {w}x{h} ({w * h / 1e6:.0f} MP), above the limit of "
                f"{max_pixels / 1e6:.0f} MP{how}; downscale it first or raise max_pixels"
            )
    elif header.pixels * header.bytes_per_pixel > max_pixels * DECODE_BYTES_PER_PIXEL:
        raise ImageTooLargeError(
            f"{display_name(name)}: {header.kind} image of {w}x{h} needs about "
            f"{header.pixels * header.bytes_per_pixel / 2**20:.0f} MiB to decode, above the limit for "
            f"{max_pixels / 1e6:.0f} MP; downscale it first or raise max_pixels"
        )
    return factor


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8 ``(H, W, 3)``: the decoding gate.

    The format is sniffed and its declared size read from the header (`maskwatch.imageheader`)
    before any decoder runs; above ``max_pixels`` a baseline JPEG is decoded at 1/2, 1/4 or 1/8
    scale, anything else refused. Every decoder failure becomes an `ImageReadError`, and what the
    decoders print is logged as one line naming the file.

    Raises:
        ImageReadError: empty, truncated, corrupt, unsupported or non-image data.
        ImageTooLargeError: too many pixels (or too much decoder memory) for ``max_pixels``.
    """
    header = read_header(data, display_name(name))
    if _is_truncated(data, header.kind):
        raise ImageReadError(f"{display_name(name)}: truncated image file")
    factor = check_decodable(header, name, max_pixels)
    if factor > 1:
        log.warning("%s: %dx%d image decoded at 1/%d scale to bound memory", display_name(name), header.width,
                    header.height, factor)
    buf = np.frombuffer(data, np.uint8)
    shown = display_name(name)
    bgr, error = None, None
    with _decoder_messages() as messages:
        try:
            bgr = cv2.imdecode(buf, _REDUCED[factor])  # EXIF orientation, alpha dropped, 16-bit -> 8-bit
        except cv2.error as exc:
            error = _CV_SOURCE.sub("", str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error")
    if bgr is None or bgr.size == 0:
        why = error or (_summary(messages) if messages else f"corrupt or unsupported {header.kind}")
        raise ImageReadError(f"{shown}: not a readable image ({header.kind}: {why[:200]})")
    if header.kind == "jpeg" and any("premature end of data segment" in m for m in messages):
        # libjpeg filled the missing part grey; Pillow refuses the same files ("image file is truncated")
        del bgr, buf
        raise ImageReadError(f"{shown}: truncated image file (the compressed data ends before the image does)")
    if messages:  # decoded, with complaints: one line naming the file
        log.warning("%s: decoder: %s", shown, _summary(messages))
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    elif bgr.shape[2] == 4:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_BGRA2BGR)
    if bgr.dtype != np.uint8:  # defensive: IMREAD_COLOR already gives 8 bits
        bgr = (bgr / 257).astype(np.uint8) if bgr.dtype == np.uint16 else bgr.astype(np.uint8)
    if bgr.shape[0] * bgr.shape[1] > max_pixels:  # a decoder disagreeing with the header
        shape = bgr.shape
        del bgr, buf  # not kept alive by the traceback
        raise ImageTooLargeError(f"{display_name(name)}: image is {shape[1]}x{shape[0]}, above {max_pixels} pixels")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file; FIFOs, devices and sockets are refused without reading them.

    Raises:
        ImageReadError: no such file, a symlink loop or broken symlink, a folder, not a regular
            file, unreadable, or larger than ``max_bytes``.
    """
    shown = display_name(path)
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"{shown}: symlink loop") from None
        if exc.errno == errno.ENOENT:
            broken = os.path.islink(path)
            raise ImageReadError(f"{shown}: {'broken symlink' if broken else 'no such file'}") from None
        if exc.errno == errno.EISDIR:
            raise ImageReadError(f"{shown}: is a folder, not an image") from None
        raise ImageReadError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ImageReadError(f"{shown}: is a folder, not an image")
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(f"{shown}: not a regular file ({_file_type(st.st_mode)})")
        if st.st_size > max_bytes:
            raise ImageTooLargeError(f"{shown}: file is {st.st_size / 2**20:.0f} MiB, above the limit of "
                                     f"{max_bytes / 2**20:.0f} MiB")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageReadError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{shown}: file grew above the limit of {max_bytes / 2**20:.0f} MiB while read")
    return data


def _file_type(mode: int) -> str:
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "special file"


def read_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file (or encoded bytes) as RGB uint8 ``(H, W, 3)``.

    Raises:
        ImageReadError: missing path, a folder, a FIFO or device, empty, truncated, corrupt or
            non-image data.
        ImageTooLargeError: more than ``max_pixels`` and not downscalable while decoding.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), max_pixels=max_pixels)
    return decode_image(read_file(source), name=os.fspath(source), max_pixels=max_pixels)


def encode_image(image: np.ndarray, ext: str = ".jpg", quality: int = 92) -> bytes:
    """Encode an RGB uint8 image to bytes (``.jpg`` or ``.png``)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode image as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 92) -> Path:
    """Write an RGB uint8 image; the format follows the file suffix. Parent folders are created.

    The file appears complete or not at all (written beside it, then renamed), so a killed batch
    leaves no half image behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_image(image, path.suffix or ".jpg", quality)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
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


@dataclass
class Inputs:
    """What a list of command-line inputs expands to.

    ``items``: ``(path, error)`` in order, one per file to process; ``error`` is set for an input
    that has nothing to read (a folder of no images, a glob matching nothing, a symlink loop), so
    that every given input gets exactly one answer. ``skipped``: why files inside folders were not
    taken (reason -> count).
    """

    items: list[tuple[Path, str | None]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def skipped_summary(self) -> str:
        n = sum(self.skipped.values())
        return f"{n} file(s) skipped: " + ", ".join(f"{c} {why}" for why, c in self.skipped.most_common())


def _classify_file(path: str) -> str | None:
    """``None`` for a file the gate may accept, else why a folder walk skips it (without blocking)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else "broken symlink"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            head = os.read(fd, SNIFF_BYTES)
        finally:
            os.close(fd)
    except OSError:
        return "unreadable"
    kind = sniff(head)
    if kind in IMAGE_FORMATS:
        return None
    if kind in VIDEO_FORMATS:
        return "video (use maskwatch watch)"
    if kind in UNSUPPORTED_FORMATS:
        return f"{kind} (not supported)"
    return "empty" if not head else "not an image"


def _walk_folder(folder: str, skipped: Counter) -> list[Path]:
    """Image files under ``folder`` (by content, any suffix), following symlinks without looping."""
    found: list[Path] = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        for name in files:
            path = os.path.join(root, name)
            why = _classify_file(path)
            if why is None:
                found.append(Path(path))
            else:
                skipped[why] += 1
    return sorted(found)


def expand_inputs(inputs: list[str]) -> Inputs:
    """Expand files, folders (recursively, every file the gate recognises as an image) and glob
    patterns, in order; see `Inputs`. Nothing but folder entries' first bytes is read."""
    import glob

    out = Inputs()
    for item in inputs:
        path = Path(item)
        try:
            st = os.stat(item)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                out.items.append((path, f"{display_name(item)}: symlink loop"))
            elif not os.path.lexists(item) and any(ch in item for ch in "*?["):
                matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if os.path.isfile(p))
                out.items.extend((p, None) for p in matches)
                if not matches:
                    out.items.append((path, f"{display_name(item)}: no such file (the pattern matches nothing)"))
            else:
                out.items.append((path, None))  # the reader says what is wrong
            continue
        if stat.S_ISDIR(st.st_mode):
            skipped: Counter = Counter()
            found = _walk_folder(item, skipped)
            out.items.extend((p, None) for p in found)
            if not found:
                detail = f" ({Inputs(skipped=skipped).skipped_summary()})" if skipped else ""
                out.items.append((path, f"{display_name(item)}: is a directory of no images{detail}"))
            else:
                out.skipped.update(skipped)
        else:
            out.items.append((path, None))  # regular or not: the reader refuses FIFOs and devices
    return out


def iter_image_paths(inputs: list[str]) -> list[Path]:
    """The paths of `expand_inputs` (inputs with nothing to read are kept, for the reader to report)."""
    return [path for path, _ in expand_inputs(inputs).items]
