import os
import re

import cv2
import numpy as np
import pytest

import hostile
from maskwatch import ImageReadError, ImageTooLargeError, read_image
from maskwatch.imageio import (
    decode_image,
    display_name,
    expand_inputs,
    image_size_from_header,
    iter_image_paths,
    read_file,
    write_image,
)

from badinputs import bad_files, cmyk_jpeg, exif_rotated, png_header_only, write_jpeg


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    img = np.zeros((60, 80, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, 80, dtype=np.uint8)[None]  # red ramp, left to right
    img[10:30, 10:30, 2] = 255
    return np.clip(img.astype(int) + rng.integers(0, 5, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such file"),
    ("empty", "empty file"),
    ("truncated", "truncated"),
    ("corrupt", "not a readable image"),
    ("text", "not a readable image"),
])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, photo, kind, message):
    path = bad_files(tmp_path, photo)[kind]
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


def test_rgb_order_and_roundtrip(tmp_path, photo):
    path = write_image(tmp_path / "a.png", photo)
    out = read_image(path)
    np.testing.assert_array_equal(out, photo)
    assert out[0, -1, 0] > 200 and out[0, -1, 2] < 10  # red stays in channel 0


def test_grayscale_becomes_rgb(tmp_path, photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], gray)


def test_rgba_drops_alpha(tmp_path, photo):
    bgra = cv2.cvtColor(photo, cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = 10
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    out = read_image(tmp_path / "a.png")
    assert out.shape == (60, 80, 3)
    np.testing.assert_array_equal(out, photo)


def test_16bit_png_is_scaled_to_8bit(tmp_path, photo):
    bgr16 = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "d.png"), bgr16)
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - photo).max() <= 1


def test_cmyk_jpeg_is_converted(tmp_path, photo):
    pytest.importorskip("PIL", reason="Pillow (test extra) writes the CMYK JPEG")
    out = read_image(cmyk_jpeg(tmp_path / "c.jpg", photo))
    assert out.shape == photo.shape
    assert np.abs(out.astype(int) - photo).mean() < 12


def test_exif_orientation_is_applied(tmp_path):
    pytest.importorskip("PIL", reason="Pillow (test extra) writes the EXIF tag")
    upright = np.zeros((40, 100, 3), np.uint8)
    upright[:, :50] = 255  # left half white when upright
    out = read_image(exif_rotated(tmp_path / "phone.jpg", upright))
    assert out.shape == (40, 100, 3)
    assert out[:, :45].mean() > 240 and out[:, 55:].mean() < 15


def test_huge_png_is_refused_from_its_header(tmp_path):
    path = png_header_only(tmp_path / "huge.png", 20000, 20000)
    assert image_size_from_header(path.read_bytes()) == (20000, 20000)
    with pytest.raises(ImageTooLargeError, match="20000x20000"):
        read_image(path)


def test_huge_jpeg_is_downscaled_while_decoding(tmp_path, caplog):
    big = np.zeros((20000, 20000), np.uint8)  # 400 MP, gray keeps the test's memory small
    big[:, 10000:] = 255
    path = tmp_path / "huge.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 50])
    del big
    assert image_size_from_header(path.read_bytes()) == (20000, 20000)
    with caplog.at_level("WARNING"):
        out = read_image(path)
    assert out.shape == (5000, 5000, 3)  # 1/4 scale: 25 MP <= the 50 MP default limit
    assert out[:, :2400].mean() < 5 and out[:, 2600:].mean() > 250
    assert "1/4 scale" in caplog.text


def test_max_pixels_is_configurable(tmp_path, photo):
    path = write_image(tmp_path / "p.png", photo)
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=100)
    small = decode_image(write_jpeg(tmp_path / "p.jpg", photo).read_bytes(), max_pixels=80 * 60 // 3)
    assert small.shape == (30, 40, 3)


def test_bytes_input(tmp_path, photo):
    data = write_jpeg(tmp_path / "p.jpg", photo).read_bytes()
    assert read_image(data).shape == photo.shape


def test_iter_image_paths_expands_folders_by_content_and_globs(tmp_path, photo):
    (tmp_path / "sub").mkdir()
    jpg = write_jpeg(tmp_path / "tmp.jpg", photo).read_bytes()
    (tmp_path / "tmp.jpg").unlink()
    for name in ("b.jpg", "a.png", "sub/c.jpeg", "noext", "anim.gif"):
        (tmp_path / name).write_bytes(jpg)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "notes.jpg").write_text("not an image either")
    found = expand_inputs([str(tmp_path)])
    assert [p.name for p, _ in found.items] == ["a.png", "anim.gif", "b.jpg", "noext", "c.jpeg"]
    assert found.skipped == {"not an image": 2}
    assert "2 not an image" in found.skipped_summary()
    assert [p.name for p in iter_image_paths([str(tmp_path / "*.jpg")])] == ["b.jpg", "notes.jpg"]
    assert [p.name for p in iter_image_paths([str(tmp_path / "missing.jpg")])] == ["missing.jpg"]


def test_every_input_gets_one_answer(tmp_path, photo):
    jpg = write_jpeg(tmp_path / "p.jpg", photo)
    (tmp_path / "empty.jpg").mkdir()  # a folder named like an image
    (tmp_path / "loops").mkdir()
    os.symlink("loop", tmp_path / "loops" / "loop")
    os.symlink("self", tmp_path / "self")
    real = tmp_path / "real"
    real.mkdir()
    (real / "x.jpg").write_bytes(jpg.read_bytes())
    os.symlink(real, tmp_path / "link")
    os.symlink(real, real / "again")  # a folder link into itself: walked once
    given = [tmp_path / "empty.jpg", tmp_path / "loops", tmp_path / "self", tmp_path / "link", tmp_path / "no*.png"]
    items = expand_inputs([str(p) for p in given]).items
    assert [(p.name, err and err.split(": ", 1)[1]) for p, err in items] == [
        ("empty.jpg", "is a directory of no images"),
        ("loops", "is a directory of no images (1 file(s) skipped: 1 symlink loop)"),
        ("self", "symlink loop"),
        ("x.jpg", None),
        ("no*.png", "no such file (the pattern matches nothing)"),
    ]


@pytest.mark.parametrize("make, message", [
    (lambda d: os.mkfifo(d / "f.jpg") or d / "f.jpg", "not a regular file (a FIFO)"),
    (lambda d: os.symlink("/dev/zero", d / "z.jpg") or d / "z.jpg", "not a regular file (a character device)"),
    (lambda d: os.symlink("nowhere", d / "b.jpg") or d / "b.jpg", "broken symlink"),
    (lambda d: os.symlink("l.jpg", d / "l.jpg") or d / "l.jpg", "symlink loop"),
])
def test_non_regular_files_are_refused_without_reading(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ImageReadError, match=re.escape(message)):
        read_image(path)  # a FIFO would block forever, /dev/zero fill the memory


def test_file_size_limit(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\x00" * 2000)
    with pytest.raises(ImageTooLargeError, match="above the limit"):
        read_file(path, max_bytes=1000)


@pytest.mark.parametrize("name, data, message", [
    ("rle.bmp", hostile.bmp_rle_bomb(20000, 20000), "20000x20000"),
    ("screen.gif", hostile.gif_bomb(20000, 20000), "20000x20000"),
    ("frame.gif", hostile.gif_bomb(20000, 20000, frame=(20000, 20000)), "20000x20000"),
    ("vp8l.webp", hostile.webp_vp8l_bomb(), "16384x16384"),
    ("vp8x.webp", hostile.webp_vp8x_bomb(16000, 16000), "16000x16000"),
    ("plain.tif", hostile.tiff_bomb(20000, 20000), "20000x20000"),
    ("dup.tif", hostile.tiff_bomb(20000, 20000, "dup"), "20000x20000"),
    ("many.tif", hostile.tiff_bomb(20000, 20000, "many"), "20000x20000"),
    ("long8.tif", hostile.tiff_bomb(20000, 20000, "long8"), "20000x20000"),
    ("tile.tif", hostile.tiff_bomb(40000, 40000, "tile"), "MiB to decode"),
    ("p.pgm", hostile.pnm_header(40000, 40000), "40000x40000"),
    ("p.ppm", hostile.pnm_header(20000, 20000, b"P6"), "20000x20000"),
    ("p.pfm", hostile.pfm_header(20000, 20000), "20000x20000"),
    ("p.hdr", hostile.hdr_header(20000, 20000), "20000x20000"),
    ("p.ras", hostile.sunras_header(40000, 40000), "40000x40000"),
    ("p.jp2", hostile.jp2_codestream(20000, 20000), "20000x20000"),
    ("p.avif", hostile.avif_bomb(20000, 20000), "20000x20000"),
    ("progressive.jpg", hostile.progressive_jpeg_bomb(20000, 20000), "progressive or multi-scan"),
    ("big.png", hostile.png_bomb(20000, 20000), "20000x20000"),
])
def test_bombs_are_refused_from_their_header(name, data, message):
    assert len(data) < 20_000
    with pytest.raises(ImageTooLargeError, match=re.escape(message)):
        decode_image(data, name=name)


@pytest.mark.parametrize("data, message", [
    (hostile.exr_bytes(), "OpenEXR"),
    (hostile.heic_bytes(), "HEIC"),
    (hostile.jp2_codestream(100, 100, 300), "300 components"),
    (hostile.zip_bytes(), "unknown format"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "maskwatch watch"),
])
def test_unsupported_formats_are_refused_typed(data, message):
    with pytest.raises(ImageReadError, match=message):
        decode_image(data)


def test_decoder_errors_are_typed_and_attributed(capfd):
    # each of these made cv2.error escape (headers above OpenCV's own pixel limit), or printed
    # hundreds of unattributed lines
    for data in (hostile.pnm_header(40000, 40000), hostile.sunras_header(40000, 40000),
                 hostile.hdr_header(40000, 40000), hostile.exr_bytes(), hostile.tiff_bomb(64, 64)[:120]):
        with pytest.raises(ImageReadError):
            decode_image(data, name="x", max_pixels=10**10)
    assert capfd.readouterr().err == ""  # nothing unattributed on stderr


def test_trailing_data_after_a_complete_image_is_accepted(tmp_path, photo):
    jpg = write_jpeg(tmp_path / "p.jpg", photo).read_bytes()
    png = write_image(tmp_path / "p.png", photo).read_bytes()
    for data in (jpg + b"\x00\x00\x00\x18ftypmp42" + bytes(3000), png + hostile.zip_bytes(), png + jpg):
        assert decode_image(data).shape == photo.shape
    for data in (jpg[: len(jpg) * 2 // 3], png[: len(png) - 20]):
        with pytest.raises(ImageReadError, match="truncated"):
            decode_image(data)


def test_jpeg_whose_data_ends_early_is_truncated():
    """A 600-byte baseline JPEG declaring 20000x20000 used to be decoded at 1/4 scale, grey-filled."""
    with pytest.raises(ImageReadError, match="truncated image file"):
        decode_image(hostile.baseline_jpeg_huge_header(20000, 20000), name="bomb.jpg")


def test_display_name_is_one_safe_line():
    assert display_name(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"
    assert display_name("a\nb\tc.jpg") == "a\\nb\\tc.jpg"
    assert display_name("ok é.jpg") == "ok é.jpg"


def test_the_gate_is_fast_and_bounded_on_the_fuzz_corpus(tmp_path):
    corpus = hostile.build_corpus(tmp_path / "c", n_mutations=150, seed=3, specials=False)
    for name, data in corpus.files.items():
        try:
            decode_image(data, name=name)
        except ImageReadError:
            pass
