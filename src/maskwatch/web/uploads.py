"""Untrusted uploads: what type the bytes are (sniffed, never taken from a name or header), how big
they may be, and an in-memory multipart reader that stops as soon as a limit is crossed.

Nothing here touches the file system: an upload lives in one ``bytearray`` of the request that
received it, and no name from a request is ever used as a path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import AsyncIterator

from ..errors import ImageReadError, ImageTooLargeError, MaskwatchError
from ..imageio import image_size_from_header

#: Default maximum upload size (bytes); the API answers 413 above it.
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Default maximum decoded image size (pixels); larger images are refused (413) unless a JPEG can be
#: decoded at a reduced scale below it.
DEFAULT_MAX_UPLOAD_PIXELS = 40_000_000

IMAGE_TYPES = ("jpeg", "png", "bmp", "webp", "tiff", "gif")
VIDEO_TYPES = ("mp4", "mov", "webm", "avi")

MEDIA_TYPES = {
    "jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp", "webp": "image/webp", "tiff": "image/tiff",
    "gif": "image/gif", "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "avi": "video/x-msvideo",
}


class UploadTooLargeError(MaskwatchError):
    """An upload is larger than the configured limit (HTTP 413)."""


class UnsupportedMediaError(ImageReadError):
    """An upload's bytes are not one of the accepted formats (HTTP 415)."""


class MissingFieldError(MaskwatchError):
    """A multipart request lacks the expected field (HTTP 422)."""


def sniff(data: bytes) -> str | None:
    """The format of ``data`` from its first bytes (``"jpeg"``, ``"png"``, ..., ``"mp4"``), or ``None``.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n....")
    'png'
    """
    head = bytes(data[:16])
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:2] == b"BM" and len(head) >= 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML: WebM / Matroska
    if head[4:8] == b"ftyp":
        return "mov" if head[8:10] == b"qt" else "mp4"
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    dims: dict[int, int] = {}
    for i in range(min(count, 512)):
        entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            dims[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (dims[256], dims[257]) if len(dims) == 2 else None


def declared_size(data: bytes, kind: str | None = None) -> tuple[int, int] | None:
    """(width, height) an image declares in its header, without decoding; ``None`` if unknown.

    Lets a decompression bomb (a small file declaring a huge image) be refused before decoding.
    """
    kind = kind or sniff(data)
    try:
        if kind in ("jpeg", "png"):
            return image_size_from_header(data)
        if kind == "gif":
            return struct.unpack("<HH", data[6:10])
        if kind == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if kind == "webp":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L":
                (bits,) = struct.unpack("<I", data[21:25])
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        if kind == "tiff":
            return _tiff_size(data)
    except struct.error:  # header cut short: the decoder reports it
        return None
    return None


def check_image_bytes(data: bytes, name: str = "upload", max_pixels: int | None = None) -> str:
    """The sniffed image format of ``data``.

    Raises:
        UnsupportedMediaError: ``data`` is not one of `IMAGE_TYPES`.
        ImageTooLargeError: its header declares more than ``max_pixels`` pixels (JPEG excepted: it
            can be decoded at a reduced scale, see `maskwatch.imageio.decode_image`).
    """
    kind = sniff(data)
    if kind not in IMAGE_TYPES:
        what = "empty" if not data else (f"a {kind} video" if kind else "not a recognised image")
        raise UnsupportedMediaError(
            f"{name}: {what}; expected an image ({', '.join(t.upper() for t in IMAGE_TYPES)})"
        )
    size = declared_size(data, kind) if max_pixels and kind != "jpeg" else None
    if size and size[0] * size[1] > max_pixels:
        raise ImageTooLargeError(f"{name}: image is {size[0]}x{size[1]}, above the limit of {max_pixels} pixels")
    return kind


def safe_name(name: str | None, default: str = "upload") -> str:
    """A display name for a client-supplied file name: its last path part, printable, at most 100 chars.

    Only ever used as a label in results, never as a path.
    """
    if not name:
        return default
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:100].strip()
    return name or default


@dataclass
class Part:
    """One multipart part held in memory."""

    name: str | None = None
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


async def read_multipart_file(
    chunks: AsyncIterator[bytes],
    content_type: str,
    field_name: str = "file",
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> Part:
    """Read the part ``field_name`` of a ``multipart/form-data`` body from ``chunks``, in memory.

    Raises `UploadTooLargeError` as soon as that part exceeds ``max_bytes`` (or the whole body exceeds
    it by more than 64 KiB of form overhead), before the rest of the body is read; `MissingFieldError`
    if the body is not multipart or has no such part.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise MissingFieldError(f"expected a multipart/form-data body with a field {field_name!r}")

    parts: list[Part] = []
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[bytes, bytes] = {}
    current: Part | None = None
    wanted: Part | None = None

    def on_part_begin() -> None:
        nonlocal current
        current = Part()
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal wanted
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        current.name = disp.get(b"name", b"").decode("utf-8", "replace") or None
        filename = disp.get(b"filename")
        current.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if current.name == field_name and wanted is None:
            wanted = current

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if current is wanted and wanted is not None:  # other fields are skipped, not kept
            wanted.data.extend(data[start:end])
            if len(wanted.data) > max_bytes:
                raise UploadTooLargeError(f"upload is larger than the limit of {max_bytes} bytes")

    def on_part_end() -> None:
        parts.append(current)

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
    })
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes + 65536:
            raise UploadTooLargeError(f"request body is larger than the limit of {max_bytes} bytes")
        parser.write(chunk)
    parser.finalize()
    if wanted is None:
        raise MissingFieldError(f"the multipart body has no field {field_name!r}")
    return wanted
