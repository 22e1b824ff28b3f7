"""A seeded generator of hostile and unlucky inputs: decompression bombs of every format the decoders
take, headers above OpenCV's limits, TIFF tricks, truncated and bit-flipped photos, valid images with
trailing data, and file-system oddities (FIFOs, device links, symlink loops, folders named like
images, names of any bytes). Shared by tests/test_fuzz.py and benchmarks/bench_fuzz.py.

``build_corpus(folder, n, seed, good)`` writes the files and returns a `Corpus`: the command-line
inputs, the good photos among them (which must be processed) and the valid-with-trailing-data ones.
Every file is small (KBs); what makes them hostile is what their headers declare.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: Sizes declared by the bombs: above any sane cap, below or above OpenCV's 2^30-pixel limit.
BIG = (20000, 20000)
HUGE = (40000, 40000)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(w: int, h: int) -> bytes:
    """A PNG declaring w x h whose pixel data is one deflate stream of zeros (a few KB)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)
    body = b"".join(comp.compress(row) for _ in range(min(h, 64))) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def bmp_rle_bomb(w: int, h: int) -> bytes:
    """An 8-bit RLE BMP: 1 KB on disk, w x h once decoded."""
    pixels = b"\x00\x01" * 8 + b"\x00\x01"  # end of line x8, end of bitmap
    palette = b"\x00\x00\x00\x00" * 256
    offset = 14 + 40 + len(palette)
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + palette + pixels


def gif_bomb(w: int, h: int, frame: tuple[int, int] | None = None) -> bytes:
    """A GIF with a w x h screen (or a small screen and a w x h frame) and one tiny LZW stream."""
    sw, sh = (16, 16) if frame else (w, h)
    fw, fh = frame or (w, h)
    head = b"GIF89a" + struct.pack("<HHBBB", sw, sh, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    desc = b"\x2c" + struct.pack("<HHHHB", 0, 0, fw, fh, 0) + b"\x02" + b"\x02\x4c\x01\x00"
    return head + desc + b"\x3b"


def webp_vp8l_bomb(w: int = 16384, h: int = 16384) -> bytes:
    """A 34-byte lossless WebP declaring w x h."""
    bits = (w - 1) | ((h - 1) << 14) | (1 << 28)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 8
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def webp_vp8x_bomb(w: int, h: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def tiff_bomb(w: int, h: int, trick: str = "plain") -> bytes:
    """A deflate-compressed 8-bit gray TIFF declaring w x h, with a header trick:

    ``plain``; ``dup`` (a small width tag first, the real one after it); ``many`` (600 unknown tags
    before the size); ``long8`` (the width as a LONG8); ``tile`` (a small image with a huge tile).
    """
    strip = zlib.compress(b"\x00" * 4096)
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value (inline or at an offset)

    def short(tag, v):
        entries.append((tag, 3, 1, struct.pack("<HH", v, 0)))

    def long(tag, v):
        entries.append((tag, 4, 1, struct.pack("<I", v)))

    if trick == "many":
        for t in range(600):
            entries.append((40000 + t, 3, 1, b"\x00\x00\x00\x00"))
    if trick == "dup":
        long(256, 64)
    if trick == "long8":
        entries.append((256, 16, 1, struct.pack("<Q", w)))
    elif trick == "tile":
        long(256, 64)
    else:
        long(256, w)
    long(257, 64 if trick == "tile" else h)
    short(258, 8)
    short(259, 8)  # deflate
    short(262, 1)
    if trick == "tile":
        long(322, w)
        long(323, h)
        long(324, 0)  # tile offsets, patched below
        long(325, len(strip))
    else:
        long(273, 0)  # strip offset, patched below
        short(277, 1)
        long(278, h)
        long(279, len(strip))
    entries.sort(key=lambda e: e[0]) if trick not in ("many", "dup") else None
    n = len(entries)
    ifd_size = 2 + 12 * n + 4
    extra = bytearray()
    data_at = 8 + ifd_size
    ifd = bytearray(struct.pack("<H", n))
    for tag, kind, count, value in entries:
        if len(value) > 4:
            off = data_at + len(extra)
            extra += value
            value = struct.pack("<I", off)
        ifd += struct.pack("<HHI", tag, kind, count) + value
    ifd += b"\x00\x00\x00\x00"
    strip_at = data_at + len(extra)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + ifd + extra + strip)
    for i in range(n):  # patch the strip / tile offset
        pos = 8 + 2 + 12 * i
        tag = struct.unpack("<H", out[pos : pos + 2])[0]
        if tag in (273, 324):
            out[pos + 8 : pos + 12] = struct.pack("<I", strip_at)
    return bytes(out)


def pnm_header(w: int, h: int, magic: bytes = b"P5") -> bytes:
    return magic + f"\n# a comment\n{w} {h}\n255\n".encode() + b"\x00" * 64


def pfm_header(w: int, h: int) -> bytes:
    return f"PF\n{w} {h}\n-1.0\n".encode() + b"\x00" * 64


def hdr_header(w: int, h: int) -> bytes:
    return f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n".encode() + b"\x00" * 64


def sunras_header(w: int, h: int) -> bytes:
    return struct.pack(">8I", 0x59A66A95, w, h, 8, w * h, 1, 0, 0) + b"\x00" * 64


def exr_bytes() -> bytes:
    return b"\x76\x2f\x31\x01\x02\x00\x00\x00" + b"channels\x00chlist\x00" + b"\x00" * 64


def jp2_codestream(w: int, h: int, components: int = 3) -> bytes:
    siz = struct.pack(">HHIIIIIIIIH", 38 + 3 * components, 0, w, h, 0, 0, w, h, 0, 0, components)
    siz += b"\x07\x01\x01" * components
    return b"\xff\x4f\xff\x51" + siz + b"\xff\xd9"


def avif_bomb(w: int, h: int) -> bytes:
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    ispe = box(b"ispe", b"\x00\x00\x00\x00" + struct.pack(">II", w, h))
    meta = box(b"meta", b"\x00\x00\x00\x00" + box(b"iprp", box(b"ipco", ispe)))
    return box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1miaf") + meta + box(b"mdat", b"\x00" * 64)


def heic_bytes() -> bytes:
    return struct.pack(">I", 24) + b"ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def progressive_jpeg_bomb(w: int, h: int) -> bytes:
    """A small progressive JPEG whose frame header is patched to declare w x h (about 600 bytes)."""
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = bytearray(buf.tobytes())
    i = data.index(b"\xff\xc2")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def baseline_jpeg_huge_header(w: int, h: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(buf.tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello" * 100)
    return buf.getvalue()


def noisy_tiff() -> bytes:
    """A valid small TIFF with hundreds of unknown private tags (libtiff warns about each)."""
    ok, buf = cv2.imencode(".tif", np.full((32, 32, 3), 90, np.uint8))
    return buf.tobytes()


# -- the corpus -----------------------------------------------------------------------------------------
@dataclass
class Corpus:
    inputs: list[str] = field(default_factory=list)  # command-line inputs, in order
    good: list[str] = field(default_factory=list)  # photos that must be processed (a subset of inputs)
    files: dict[str, bytes] = field(default_factory=dict)  # name -> bytes of every regular hostile file (for the API)

    def add(self, path: Path, data: bytes | None = None, good: bool = False) -> None:
        if data is not None:
            path.write_bytes(data)
            self.files[path.name if isinstance(path.name, str) else str(path)] = data
        self.inputs.append(str(path))
        if good:
            self.good.append(str(path))


def mutations(rng: np.random.Generator, data: bytes, n: int) -> list[bytes]:
    """Truncations, bit flips, byte runs and chunk duplications of ``data``."""
    out = []
    for _ in range(n):
        b = bytearray(data)
        op = rng.integers(0, 4)
        if op == 0:
            b = b[: int(rng.integers(1, len(b)))]
        elif op == 1:
            for _ in range(int(rng.integers(1, 20))):
                i = int(rng.integers(0, len(b)))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 2:
            i = int(rng.integers(0, len(b)))
            b[i : i + int(rng.integers(1, 64))] = bytes([int(rng.integers(0, 256))]) * int(rng.integers(1, 64))
        else:
            i, j = sorted(int(x) for x in rng.integers(0, len(b), 2))
            b[j:j] = b[i : i + 256]
        out.append(bytes(b))
    return out


def build_corpus(folder: Path, n_mutations: int = 200, seed: int = 0, good: list[np.ndarray] | None = None,
                 specials: bool = True) -> Corpus:
    """Write the hostile corpus into ``folder`` (created); see the module docstring."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    c = Corpus()
    if good is None:
        good = [np.full((64, 64, 3), 100, np.uint8)]
    photos = []
    for i, img in enumerate(good):
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
        photos.append(jpg)
        c.add(folder / f"good_{i}.jpg", jpg, good=True)
    jpg = photos[0]
    png = cv2.imencode(".png", cv2.cvtColor(good[0], cv2.COLOR_RGB2BGR))[1].tobytes()
    # valid images with trailing data: must be processed
    c.add(folder / "motion_photo.jpg", jpg + b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000), good=True)
    c.add(folder / "png_zip.png", png + zip_bytes(), good=True)
    c.add(folder / "png_jpeg.png", png + jpg, good=True)
    c.add(folder / "noext_photo", jpg, good=True)  # no suffix
    gif_ok = cv2.imencode(".gif", cv2.cvtColor(good[0], cv2.COLOR_RGB2BGR))[1].tobytes() if _can_encode(".gif") else None
    if gif_ok:
        c.add(folder / "photo.gif", gif_ok, good=True)
    # bombs and headers above every limit
    for w, h in (BIG, HUGE):
        tag = f"{w}x{h}"
        c.add(folder / f"bomb_{tag}.png", png_bomb(w, h))
        c.add(folder / f"bomb_{tag}.bmp", bmp_rle_bomb(w, h))
        c.add(folder / f"bomb_{tag}.gif", gif_bomb(w, h))
        c.add(folder / f"bomb_frame_{tag}.gif", gif_bomb(w, h, frame=(w, h)))
        c.add(folder / f"bomb_{tag}.pgm", pnm_header(w, h))
        c.add(folder / f"bomb_{tag}.ppm", pnm_header(w, h, b"P6"))
        c.add(folder / f"bomb_{tag}.pfm", pfm_header(w, h))
        c.add(folder / f"bomb_{tag}.hdr", hdr_header(w, h))
        c.add(folder / f"bomb_{tag}.ras", sunras_header(w, h))
        c.add(folder / f"bomb_{tag}.jp2", jp2_codestream(w, h))
        c.add(folder / f"bomb_{tag}.avif", avif_bomb(w, h))
        c.add(folder / f"bomb_progressive_{tag}.jpg", progressive_jpeg_bomb(w, h))
        c.add(folder / f"bomb_baseline_{tag}.jpg", baseline_jpeg_huge_header(w, h))
        for trick in ("plain", "dup", "many", "long8", "tile"):
            c.add(folder / f"bomb_{trick}_{tag}.tif", tiff_bomb(w, h, trick))
    c.add(folder / "bomb_16384.webp", webp_vp8l_bomb())
    c.add(folder / "bomb_vp8x.webp", webp_vp8x_bomb(16000, 16000))
    c.add(folder / "exr.exr", exr_bytes())
    c.add(folder / "photo.heic", heic_bytes())
    c.add(folder / "jp2_many_components.jp2", jp2_codestream(100, 100, 300))
    c.add(folder / "empty.jpg", b"")
    c.add(folder / "text.jpg", b"this is not an image\n")
    c.add(folder / "zip.png", zip_bytes())
    c.add(folder / "random.bin", os.urandom(3000))
    # mutated photos: truncations, bit flips, runs
    sources = [jpg, png, cv2.imencode(".bmp", np.full((40, 40, 3), 7, np.uint8))[1].tobytes(),
               cv2.imencode(".webp", np.full((40, 40, 3), 7, np.uint8))[1].tobytes(),
               cv2.imencode(".tif", np.full((40, 40, 3), 7, np.uint8))[1].tobytes(),
               tiff_bomb(64, 64), bmp_rle_bomb(64, 64), gif_bomb(64, 64), progressive_jpeg_bomb(64, 64)]
    names = ["jpg", "png", "bmp", "webp", "tif", "tif", "bmp", "gif", "jpg"]
    for k in range(n_mutations):
        s = int(rng.integers(0, len(sources)))
        (data,) = mutations(rng, sources[s], 1)
        c.add(folder / f"mut_{k:04d}.{names[s]}", data)
    if specials:
        _add_specials(folder, c, jpg)
    return c


def _can_encode(ext: str) -> bool:
    try:
        return bool(cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))[0])
    except cv2.error:
        return False


def _add_specials(folder: Path, c: Corpus, jpg: bytes) -> None:
    """File-system oddities (POSIX): each must get one answer without hanging or reading forever."""
    d = folder / "folder.jpg"  # a folder named like an image, holding nothing
    d.mkdir(exist_ok=True)
    c.add(d)
    loops = folder / "only_a_loop"
    loops.mkdir(exist_ok=True)
    os.symlink("loop", loops / "loop")
    c.add(loops)
    os.symlink("self_loop", folder / "self_loop")
    c.add(folder / "self_loop")
    real = folder / "real_folder"
    real.mkdir(exist_ok=True)
    (real / "inside.jpg").write_bytes(jpg)
    os.symlink(real, folder / "link_to_folder")
    c.add(folder / "link_to_folder")
    c.good.append(str(folder / "link_to_folder" / "inside.jpg"))
    os.mkfifo(folder / "fifo.jpg")
    c.add(folder / "fifo.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    c.add(folder / "zero.jpg")
    c.add(folder / "missing.jpg")
    odd = os.fsdecode(b"caf\xe9_latin1.jpg")  # not UTF-8
    (folder / odd).write_bytes(jpg)
    c.add(folder / odd, good=True)
    nl = folder / "new\nline.jpg"
    nl.write_bytes(b"not an image")
    c.add(nl)
    (folder / "new\nline_good.jpg").write_bytes(jpg)
    c.add(folder / "new\nline_good.jpg", good=True)


def run_with_peak_rss(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, float]:
    """Run ``cmd`` (stdout discarded) and return (exit code, stderr, its own peak RSS in MiB).

    The peak is the child's VmHWM, read from /proc while it runs: wait4's ru_maxrss would include
    the memory of the (possibly large) process that spawned it, which Linux carries across exec.
    """
    import subprocess
    import threading

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0.0]

    def watch() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]) / 1024)
            except OSError:
                break
            threading.Event().wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    err = proc.stderr.read()  # until the child closes it, i.e. exits
    proc.wait()
    watcher.join()
    return proc.returncode, err, peak[0]
