"""`maskwatch.web.uploads`: sniffing, display names and the in-memory multipart reader (no server)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from maskwatch.errors import ImageTooLargeError
from maskwatch.web.uploads import (
    declared_size,
    MissingFieldError,
    UnsupportedMediaError,
    UploadTooLargeError,
    check_image_bytes,
    read_multipart_file,
    safe_name,
    sniff,
)


@pytest.mark.parametrize("head, kind", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
    (b"BM6\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00", "bmp"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
    (b"II*\x00\x08\x00\x00\x00", "tiff"),
    (b"MM\x00*\x00\x00\x00\x08", "tiff"),
    (b"GIF89a\x01\x00\x01\x00", "gif"),
    (b"\x00\x00\x00\x18ftypmp42", "mp4"),
    (b"\x00\x00\x00\x14ftypqt  ", "mov"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm"),
    (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
    (b"%PDF-1.7", None),
    (b"<html><body>", None),
    (b"", None),
    (b"BM", None),  # too short to be a bitmap
])
def test_sniff(head, kind):
    assert sniff(head) == kind


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"%PDF-1.7 ...", "not a recognised image"),
    (b"\x00\x00\x00\x18ftypmp42", "a mp4 video"),
])
def test_check_image_bytes_rejects(data, message):
    with pytest.raises(UnsupportedMediaError, match=message):
        check_image_bytes(data, "x.jpg")


@pytest.mark.parametrize("name, expected", [
    (None, "upload"),
    ("", "upload"),
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\face.png", "face.png"),
    ("dir/", "upload"),
    ("a\x00b\nc.jpg", "abc.jpg"),
    ("x" * 300, "x" * 100),
])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


def _body(fields: list[tuple[str, str | None, bytes]], boundary: str = "XyZ") -> bytes:
    out = b""
    for name, filename, data in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _read(body: bytes, chunk: int = 7, max_bytes: int = 1000, ctype: str = "multipart/form-data; boundary=XyZ"):
    consumed = []

    async def chunks():
        for i in range(0, len(body), chunk):
            consumed.append(i)
            yield body[i : i + chunk]

    part = asyncio.run(read_multipart_file(chunks(), ctype, "file", max_bytes))
    return part, consumed


needs_multipart = pytest.mark.skipif(importlib.util.find_spec("python_multipart") is None,
                                     reason="needs the 'serve' extra (python-multipart): pip install 'maskwatch[serve]'")


@needs_multipart
def test_multipart_reads_the_file_field_only():
    part, _ = _read(_body([("note", None, b"hello"), ("file", "a.jpg", b"\xff\xd8\xff" + b"1" * 50)]))
    assert part.filename == "a.jpg" and bytes(part.data) == b"\xff\xd8\xff" + b"1" * 50


@needs_multipart
def test_multipart_stops_reading_at_the_limit():
    body = _body([("file", "big.jpg", b"0" * 100_000)])
    consumed = []

    async def chunks():
        for i in range(0, len(body), 100):
            consumed.append(i)
            yield body[i : i + 100]

    with pytest.raises(UploadTooLargeError):
        asyncio.run(read_multipart_file(chunks(), "multipart/form-data; boundary=XyZ", "file", 1000))
    assert len(consumed) < 20  # stopped soon after the limit, not at the end of the 100 kB body


@needs_multipart
@pytest.mark.parametrize("body, ctype", [
    (_body([("other", "a.jpg", b"123")]), "multipart/form-data; boundary=XyZ"),
    (b"file=123", "application/x-www-form-urlencoded"),
    (b"", ""),
    (_body([("file", "a.jpg", b"123")]), "multipart/form-data"),  # no boundary
])
def test_multipart_missing_field(body, ctype):
    with pytest.raises(MissingFieldError):
        _read(body, ctype=ctype)


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}), ("JPEG", {}), ("BMP", {}), ("GIF", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}),
    ("WEBP", {"lossless": False}), ("WEBP", {"lossless": True}),
])
def test_declared_size_matches_the_image(fmt, options):
    pil = pytest.importorskip("PIL.Image")
    import io

    buf = io.BytesIO()
    pil.new("RGB", (123, 45), (10, 200, 30)).save(buf, fmt, **options)
    assert declared_size(buf.getvalue()) == (123, 45)


def test_declared_size_of_a_webp_with_alpha():  # VP8X header
    pil = pytest.importorskip("PIL.Image")
    import io

    buf = io.BytesIO()
    pil.new("RGBA", (77, 99), (10, 200, 30, 128)).save(buf, "WEBP")
    assert declared_size(buf.getvalue()) == (77, 99)


@pytest.mark.parametrize("head", [
    b"GIF89a\x01", b"BM" + b"\0" * 14, b"II*\x00\xff\xff\x00\x00", b"RIFF\0\0\0\0WEBPVP8 ",
])
def test_declared_size_of_cut_headers_is_unknown(head):
    assert declared_size(head) is None


def test_check_image_bytes_refuses_a_bomb_before_decoding():
    gif_bomb = b"GIF89a" + (60000).to_bytes(2, "little") * 2 + b"\0" * 64  # 3.6 G pixels declared
    with pytest.raises(ImageTooLargeError, match="60000x60000"):
        check_image_bytes(gif_bomb, "bomb.gif", max_pixels=10**6)
    assert check_image_bytes(gif_bomb, "bomb.gif") == "gif"  # no limit given
