"""What an encoded image says about itself, read from its first bytes without decoding it.

`sniff` names the format from the bytes (never from a file name); `read_header` returns the size
the image declares, for every format `maskwatch.imageio.decode_image` hands to OpenCV, so that a
decompression bomb (a small file declaring a huge image) is refused before a decoder allocates
anything. The parsers are conservative: where a header holds the size more than once (duplicated
TIFF tags, GIF frames, AVIF item properties) the largest value counts, and a header that cannot be
read is refused rather than passed on.

Why hand-written and not Pillow's lazy ``Image.open``: the size that matters is the one *OpenCV's*
decoders (libtiff, libjpeg-turbo, libwebp, libavif, OpenJPEG, ...) will use, and a second parser
disagreeing with them is exactly the bypass seen with TIFF; Pillow would also be a new core
dependency for a job of ~250 lines that the fuzz test (tests/test_fuzz.py) exercises.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import ImageReadError

#: Formats the decoding gate accepts (all decoded by OpenCV).
IMAGE_FORMATS = ("jpeg", "png", "bmp", "webp", "gif", "tiff", "avif", "jp2", "pnm", "pfm", "sunras", "hdr")
#: Formats recognised but refused, with the reason shown to the user.
UNSUPPORTED_FORMATS = {
    "heic": "HEIC/HEIF photos are not supported (no HEVC decoder); convert to JPEG",
    "exr": "OpenEXR images are not supported",
    "psd": "Photoshop files are not supported",
}
VIDEO_FORMATS = ("mp4", "mov", "webm", "avi")

#: How many bytes of a file `sniff` needs.
SNIFF_BYTES = 32

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_VIDEO_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V ", b"M4A ",
                 b"3gp4", b"3gp5", b"3g2a", b"mmp4", b"f4v ", b"MSNV"}


def _ftyp_kind(data: bytes) -> str:
    """avif, heic, mov or mp4 for an ISO base media file (``....ftyp``)."""
    (size,) = struct.unpack(">I", data[:4])
    major = data[8:12]
    brands = {major}
    end = min(len(data), size if 16 <= size <= 4096 else 16)
    brands.update(data[i : i + 4] for i in range(16, end - 3, 4))
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIC_BRANDS and not brands & _VIDEO_BRANDS:
        return "heic"
    return "mov" if major == b"qt  " else "mp4"


def sniff(data: bytes) -> str | None:
    """The format of ``data`` from its first bytes (``"jpeg"``, ``"png"``, ..., ``"mp4"``), or ``None``.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n....")
    'png'
    """
    head = bytes(data[:SNIFF_BYTES])
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:2] == b"BM" and len(head) >= 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML: WebM / Matroska
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _ftyp_kind(bytes(data[:4096]))
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "jp2"
    if head[:4] == b"\x76\x2f\x31\x01":
        return "exr"
    if head[:4] == b"8BPS":
        return "psd"
    if head[:4] == b"\x59\xa6\x6a\x95":
        return "sunras"
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return "hdr"
    if len(head) >= 3 and head[0:1] == b"P" and head[2:3].isspace():
        if head[1:2] in b"1234567" and head[1:2] != b"":
            return "pnm"
        if head[1:2] in (b"F", b"f"):
            return "pfm"
    return None


@dataclass(frozen=True)
class ImageHeader:
    """What an image declares: its format, size, and how its decoder spends memory.

    ``bytes_per_pixel`` is what the decoder holds per pixel at most beyond the 3-byte output (float
    samples, 16-bit TIFF strips, JPEG 2000's 32-bit samples); ``downscalable`` says the decoder can
    stream it at 1/2, 1/4 or 1/8 scale (baseline single-scan JPEG) with memory of the output only.
    """

    kind: str
    width: int
    height: int
    bytes_per_pixel: float = 3.0
    downscalable: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height


class _Short(Exception):
    """A header ends before the field being read."""


def _unpack(fmt: str, data: bytes, offset: int) -> tuple:
    end = offset + struct.calcsize(fmt)
    if offset < 0 or end > len(data):
        raise _Short
    return struct.unpack(fmt, data[offset:end])


# -- per format -----------------------------------------------------------------------------------------
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_layout(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, SOF marker, components, offset of the first SOS) of a JPEG, or ``None``."""
    i, n = 2, len(data)
    sof = None
    while i + 4 <= n:
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
        if marker in _JPEG_SOF and sof is None:
            if i + 10 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            sof = (w, h, marker, data[i + 9])
        if marker == 0xDA:  # start of scan
            if sof is None:
                return None
            return (*sof, i)
        if marker == 0xD9:
            return None
        i += 2 + length
    return None


def _jpeg(data: bytes) -> ImageHeader:
    layout = jpeg_layout(data)
    if layout is None:
        raise ImageReadError("no frame header before the image data (corrupt JPEG)")
    w, h, marker, components, sos = layout
    scan_components = data[sos + 4] if sos + 4 < len(data) else 0
    # baseline/extended sequential, Huffman, all components in the first scan: libjpeg streams it (and
    # scales it while decoding); progressive, arithmetic, lossless or multi-scan files need the whole
    # image's coefficients in memory (2 bytes per sample) however small the output
    streams = marker in (0xC0, 0xC1) and scan_components == components
    return ImageHeader("jpeg", w, h, 3.0 if streams else 3.0 + 2.0 * max(components, 1), downscalable=streams)


def _png(data: bytes) -> ImageHeader:
    w, h = _unpack(">II", data, 16)
    return ImageHeader("png", w, h)


def _bmp(data: bytes) -> ImageHeader:
    (dib,) = _unpack("<I", data, 14)
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        w, h = _unpack("<HH", data, 18)
    else:
        w, h = _unpack("<ii", data, 18)
    return ImageHeader("bmp", abs(w), abs(h))


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = _unpack("<HH", data, 26)
        return ImageHeader("webp", w & 0x3FFF, h & 0x3FFF, 7.0)
    if chunk == b"VP8L":
        (bits,) = _unpack("<I", data, 21)
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 7.0)
    if chunk == b"VP8X":
        if len(data) < 30:
            raise _Short
        return ImageHeader("webp", int.from_bytes(data[24:27], "little") + 1,
                           int.from_bytes(data[27:30], "little") + 1, 7.0)  # RGBA, then BGR
    raise ImageReadError(f"unknown WebP chunk {chunk!r}")


def _gif(data: bytes) -> ImageHeader:
    """The logical screen, grown to cover every frame's rectangle (decoders allocate both)."""
    w, h, flags = _unpack("<HHB", data, 6)
    i = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    n = len(data)
    while i < n:
        block = data[i]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            i += 2
        elif block == 0x2C:  # image descriptor
            left, top, fw, fh, fflags = _unpack("<HHHHB", data, i + 1)
            w, h = max(w, left + fw), max(h, top + fh)
            i += 10 + (3 * 2 ** ((fflags & 7) + 1) if fflags & 0x80 else 0) + 1  # + LZW minimum code size
        else:
            break  # garbage after the frames: decoders stop too
        while i < n and data[i] != 0:  # sub-blocks
            i += data[i] + 1
        i += 1
    return ImageHeader("gif", w, h)


_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q", 17: "q"}


def _tiff(data: bytes) -> ImageHeader:
    """Every width/length/tile/sample tag of the first directory, the largest of duplicates."""
    order = "<" if data[:2] == b"II" else ">"
    (magic,) = _unpack(order + "H", data, 2)
    big = magic == 43
    if big:
        (ifd,) = _unpack(order + "Q", data, 8)
        (count,) = _unpack(order + "Q", data, ifd)
        first, entry_size, inline = ifd + 8, 20, 8
    else:
        (ifd,) = _unpack(order + "I", data, 4)
        (count,) = _unpack(order + "H", data, ifd)
        first, entry_size, inline = ifd + 2, 12, 4
    values: dict[int, list[int]] = {}
    for k in range(min(count, (len(data) - first) // entry_size + 1)):
        pos = first + k * entry_size
        if pos + entry_size > len(data):
            break
        if big:
            tag, kind, n = _unpack(order + "HHQ", data, pos)
        else:
            tag, kind, n = _unpack(order + "HHI", data, pos)
        if tag not in (256, 257, 258, 277, 322, 323):
            continue
        code = _TIFF_TYPES.get(kind)
        if code is None:
            raise ImageReadError(f"TIFF tag {tag} has an unexpected type {kind}")
        size = struct.calcsize(code)
        n = min(n, 64)
        where = pos + entry_size - inline
        if n * size > inline:
            (where,) = _unpack(order + ("Q" if big else "I"), data, where)
        values.setdefault(tag, []).extend(abs(v) for v in _unpack(order + code * n, data, where))
    if not values.get(256) or not values.get(257):
        raise ImageReadError("TIFF without an image width and length")
    w, h = max(values[256]), max(values[257])
    spp = max(values.get(277, [1]))
    bits = max(values.get(258, [8]))
    if spp > 4 or bits > 16:
        raise ImageReadError(f"TIFF with {spp} samples of {bits} bits per pixel is not supported "
                             "(at most 4 samples of 16 bits)")
    # a strip or tile buffer of the sample size, beside the output
    tile_area = max(values.get(322, [0])) * max(values.get(323, [0]))
    extra = spp * max(bits, 8) / 8 * max(1.0, tile_area / max(w * h, 1))
    return ImageHeader("tiff", w, h, 3.0 + extra)


def _avif_boxes(data: bytes, start: int, end: int, out: list[tuple[int, int]], depth: int = 0) -> None:
    i = start
    while i + 8 <= end and depth < 8:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        header = 8
        if size == 1:
            (size,) = _unpack(">Q", data, i + 8)
            header = 16
        elif size == 0:
            size = end - i
        if size < header:
            return
        stop = min(end, i + size)
        if kind == b"meta":
            _avif_boxes(data, i + header + 4, stop, out, depth + 1)  # full box: version and flags first
        elif kind in (b"iprp", b"ipco"):
            _avif_boxes(data, i + header, stop, out, depth + 1)
        elif kind == b"ispe":
            out.append(_unpack(">II", data, i + header + 4))
        i += size


def _avif(data: bytes) -> ImageHeader:
    sizes: list[tuple[int, int]] = []
    _avif_boxes(data, 0, len(data), sizes)
    if not sizes:
        raise ImageReadError("AVIF without an image size (ispe) property")
    # libavif holds the YUV planes (16-bit beyond 8 bits per sample) and an alpha plane beside the output
    return ImageHeader("avif", max(w for w, _ in sizes), max(h for _, h in sizes), 3.0 + 8.0)


def _jp2(data: bytes) -> ImageHeader:
    """The codestream's SIZ marker (what OpenJPEG decodes), also inside a JP2 container."""
    pos = data.find(b"\xff\x4f\xff\x51")
    if pos < 0:
        raise ImageReadError("JPEG 2000 without a codestream")
    xs, ys, xo, yo = _unpack(">IIII", data, pos + 8)
    (components,) = _unpack(">H", data, pos + 40)
    if components > 4:
        raise ImageReadError(f"JPEG 2000 with {components} components is not supported (at most 4)")
    # OpenJPEG keeps every sample as a 32-bit integer
    return ImageHeader("jp2", max(xs - xo, 0), max(ys - yo, 0), 3.0 + 4.0 * max(components, 1))


_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*(\S+)")


def _pnm(data: bytes) -> ImageHeader:
    head = bytes(data[:4096])
    if head[1:2] == b"7":  # PAM: "WIDTH n" / "HEIGHT n" lines
        fields = dict(re.findall(rb"(?m)^(WIDTH|HEIGHT|DEPTH)\s+(\d+)", head.split(b"ENDHDR")[0]))
        if b"WIDTH" not in fields or b"HEIGHT" not in fields:
            raise ImageReadError("PAM header without WIDTH and HEIGHT")
        return ImageHeader("pnm", int(fields[b"WIDTH"]), int(fields[b"HEIGHT"]), 3.0 + int(fields.get(b"DEPTH", 3)))
    tokens, pos = [], 2
    while len(tokens) < 2:
        m = _TOKEN.match(head, pos)
        if not m or not m.group(1).isdigit():
            raise ImageReadError("PNM header without a width and height")
        tokens.append(int(m.group(1)))
        pos = m.end()
    return ImageHeader("pnm", tokens[0], tokens[1], 6.0)  # 16-bit samples are read as such


def _pfm(data: bytes) -> ImageHeader:
    m = re.match(rb"P[Ff]\s+(\d+)\s+(\d+)", bytes(data[:256]))
    if not m:
        raise ImageReadError("PFM header without a width and height")
    return ImageHeader("pfm", int(m.group(1)), int(m.group(2)), 3.0 + 12.0)  # float samples, then 8 bits


def _sunras(data: bytes) -> ImageHeader:
    w, h = _unpack(">II", data, 4)
    return ImageHeader("sunras", w, h)


def _hdr(data: bytes) -> ImageHeader:
    head = bytes(data[:8192])
    m = re.search(rb"\n\n([-+])([XY]) (\d+) ([-+])([XY]) (\d+)", head)
    if not m:
        raise ImageReadError("Radiance HDR header without a resolution line")
    first, second = int(m.group(3)), int(m.group(6))
    w, h = (second, first) if m.group(2) == b"Y" else (first, second)
    return ImageHeader("hdr", w, h, 3.0 + 12.0)  # float samples, then 8 bits


_PARSERS = {"jpeg": _jpeg, "png": _png, "bmp": _bmp, "webp": _webp, "gif": _gif, "tiff": _tiff, "avif": _avif,
            "jp2": _jp2, "pnm": _pnm, "pfm": _pfm, "sunras": _sunras, "hdr": _hdr}
assert set(_PARSERS) == set(IMAGE_FORMATS)


def read_header(data: bytes, name: str = "<bytes>") -> ImageHeader:
    """The format and declared size of an encoded image, without decoding it.

    Raises:
        ImageReadError: empty data, not an image, a recognised but unsupported format (HEIC,
            OpenEXR, a video, ...), or a header that is cut short or malformed.
    """
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    kind = sniff(data)
    if kind in UNSUPPORTED_FORMATS:
        raise ImageReadError(f"{name}: {UNSUPPORTED_FORMATS[kind]}")
    if kind in VIDEO_FORMATS:
        raise ImageReadError(f"{name}: a {kind} video, not an image (use `maskwatch watch` for videos)")
    if kind is None:
        raise ImageReadError(f"{name}: not a readable image (unknown format)")
    try:
        header = _PARSERS[kind](data)
    except _Short:
        raise ImageReadError(f"{name}: truncated image file ({kind} header cut short)") from None
    except (ImageReadError, struct.error, ValueError, IndexError, OverflowError) as exc:
        raise ImageReadError(f"{name}: not a readable image ({kind}: {exc or 'malformed header'})") from None
    if header.width <= 0 or header.height <= 0:
        raise ImageReadError(f"{name}: not a readable image ({kind} header declares {header.width}x{header.height})")
    return header
