"""Untrusted uploads: what type the bytes are (sniffed, never taken from a name or header), how big
they may be, and an in-memory multipart reader that stops as soon as a limit is crossed.

Nothing here touches the file system: an upload lives in one ``bytearray`` of the request that
received it, and no name from a request is ever used as a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator

from ..errors import ImageReadError, MaskwatchError
from ..imageheader import IMAGE_FORMATS, UNSUPPORTED_FORMATS, VIDEO_FORMATS, read_header, sniff
from ..imageio import check_decodable

#: Default maximum upload size (bytes); the API answers 413 above it.
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Default maximum decoded image size (pixels); larger images are refused (413) unless a baseline
#: JPEG can be decoded at a reduced scale below it.
DEFAULT_MAX_UPLOAD_PIXELS = 40_000_000

#: Seconds a client has to send a whole upload (HTTP 408 after it).
DEFAULT_READ_TIMEOUT = 30.0

#: What the decoding gate accepts (`maskwatch.imageheader`); the type is sniffed from the bytes.
IMAGE_TYPES = IMAGE_FORMATS
VIDEO_TYPES = VIDEO_FORMATS

MEDIA_TYPES = {
    "jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp", "webp": "image/webp", "tiff": "image/tiff",
    "gif": "image/gif", "avif": "image/avif", "jp2": "image/jp2", "pnm": "image/x-portable-anymap",
    "pfm": "image/x-portable-floatmap", "sunras": "image/x-sun-raster", "hdr": "image/vnd.radiance",
    "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "avi": "video/x-msvideo",
}


class UploadTooLargeError(MaskwatchError):
    """An upload is larger than the configured limit (HTTP 413)."""


class UnsupportedMediaError(ImageReadError):
    """An upload's bytes are not one of the accepted formats (HTTP 415)."""


class MissingFieldError(MaskwatchError):
    """A multipart request lacks the expected field (HTTP 422)."""


def declared_size(data: bytes, kind: str | None = None) -> tuple[int, int] | None:
    """(width, height) an image declares in its header, without decoding; ``None`` if unknown.

    Lets a decompression bomb (a small file declaring a huge image) be refused before decoding.
    """
    try:
        header = read_header(data)
    except ImageReadError:
        return None
    return header.width, header.height


def check_image_bytes(data: bytes, name: str = "upload", max_pixels: int | None = None) -> str:
    """The sniffed image format of ``data``, checked by the decoding gate before any decoding.

    Raises:
        UnsupportedMediaError: ``data`` is not one of `IMAGE_TYPES`.
        ImageTooLargeError: its header declares more than ``max_pixels`` pixels (a baseline JPEG
            excepted: it is decoded at a reduced scale, see `maskwatch.imageio.decode_image`), or
            its decoder would need too much memory.
        ImageReadError: its header is cut short or malformed.
    """
    kind = sniff(data)
    if kind not in IMAGE_TYPES:
        what = "empty" if not data else (
            f"a {kind} video" if kind in VIDEO_TYPES else UNSUPPORTED_FORMATS.get(kind, "not a recognised image"))
        raise UnsupportedMediaError(
            f"{name}: {what}; expected an image ({', '.join(t.upper() for t in IMAGE_TYPES)})"
        )
    header = read_header(data, name)
    if max_pixels:
        check_decodable(header, name, max_pixels)
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
