"""`maskwatch.web.uploads`: sniffing, display names and the in-memory multipart reader (no server)."""

from __future__ import annotations

import asyncio

import pytest

from maskwatch.web.uploads import (
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


def test_multipart_reads_the_file_field_only():
    part, _ = _read(_body([("note", None, b"hello"), ("file", "a.jpg", b"\xff\xd8\xff" + b"1" * 50)]))
    assert part.filename == "a.jpg" and bytes(part.data) == b"\xff\xd8\xff" + b"1" * 50


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


@pytest.mark.parametrize("body, ctype", [
    (_body([("other", "a.jpg", b"123")]), "multipart/form-data; boundary=XyZ"),
    (b"file=123", "application/x-www-form-urlencoded"),
    (b"", ""),
    (_body([("file", "a.jpg", b"123")]), "multipart/form-data"),  # no boundary
])
def test_multipart_missing_field(body, ctype):
    with pytest.raises(MissingFieldError):
        _read(body, ctype=ctype)
