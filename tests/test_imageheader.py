"""`maskwatch.imageheader`: the format and declared size of genuine files of every accepted format
(so that the gate never refuses a real image), and of the tricky headers."""

import cv2
import numpy as np
import pytest

import hostile
from maskwatch.errors import ImageReadError
from maskwatch.imageheader import IMAGE_FORMATS, read_header, sniff
from maskwatch.imageio import decode_image

W, H = 37, 23


def _encode(ext: str, image: np.ndarray, params=()) -> bytes | None:
    try:
        ok, buf = cv2.imencode(ext, image, list(params))
    except cv2.error:
        return None
    return buf.tobytes() if ok else None


@pytest.mark.parametrize("ext, kind, params", [
    (".jpg", "jpeg", ()), (".jpg", "jpeg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)), (".png", "png", ()),
    (".bmp", "bmp", ()), (".webp", "webp", ()), (".webp", "webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),
    (".tif", "tiff", ()), (".gif", "gif", ()), (".jp2", "jp2", ()), (".pgm", "pnm", ()), (".ppm", "pnm", ()),
    (".pam", "pnm", ()), (".pfm", "pfm", ()), (".sr", "sunras", ()), (".hdr", "hdr", ()), (".avif", "avif", ()),
])
def test_genuine_files_are_sized_and_decoded(ext, kind, params):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (H, W, 3), np.uint8)
    if ext == ".pgm":
        image = image[..., 0]
    if ext in (".pfm", ".hdr"):
        image = image.astype(np.float32) / 255
    data = _encode(ext, image, params)
    if data is None:
        pytest.skip(f"this OpenCV build cannot write {ext}")
    header = read_header(data)
    assert (sniff(data), header.kind, header.width, header.height) == (kind, kind, W, H)
    assert decode_image(data).shape == (H, W, 3)


def test_every_accepted_format_has_a_parser():
    assert {"jpeg", "png", "bmp", "webp", "gif", "tiff", "avif", "jp2"} <= set(IMAGE_FORMATS)


def test_jpeg_layout_tells_streamable_from_progressive():
    img = np.zeros((16, 16, 3), np.uint8)
    assert read_header(_encode(".jpg", img)).downscalable
    assert not read_header(_encode(".jpg", img, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))).downscalable


def test_tiff_duplicates_count_at_their_largest():
    assert (read_header(hostile.tiff_bomb(20000, 30000, "dup")).width, 30000) == (20000, 30000)
    assert read_header(hostile.tiff_bomb(20000, 64, "long8")).width == 20000


def test_gif_frame_larger_than_its_screen():
    header = read_header(hostile.gif_bomb(20000, 10000, frame=(20000, 10000)))
    assert (header.width, header.height) == (20000, 10000)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated"), (b"GIF89a\x01", "truncated"),
    (b"P5\nabc", "PNM header"), (b"RIFF\x10\x00\x00\x00WEBPVP8Q", "WebP"),
])
def test_malformed_headers_are_refused(data, message):
    with pytest.raises(ImageReadError, match=message):
        read_header(data, "x")
