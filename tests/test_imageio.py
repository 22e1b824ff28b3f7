import cv2
import numpy as np
import pytest

from maskwatch import ImageReadError, ImageTooLargeError, read_image
from maskwatch.imageio import decode_image, image_size_from_header, iter_image_paths, write_image

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


def test_iter_image_paths_expands_folders_and_globs(tmp_path, photo):
    (tmp_path / "sub").mkdir()
    for name in ("b.jpg", "a.png", "sub/c.jpeg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = iter_image_paths([str(tmp_path)])
    assert [p.name for p in found] == ["a.png", "b.jpg", "c.jpeg"]
    assert [p.name for p in iter_image_paths([str(tmp_path / "*.jpg")])] == ["b.jpg"]
    assert [p.name for p in iter_image_paths([str(tmp_path / "missing.jpg")])] == ["missing.jpg"]
