"""The REST API over HTTP: every status code, the JSON contract, concurrency, recovery after bad input."""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
httpx = pytest.importorskip("httpx", reason="the test extra (httpx) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from maskwatch.imageio import encode_image  # noqa: E402
from maskwatch.labels import LABELS  # noqa: E402
from maskwatch.web.api import Settings, create_app  # noqa: E402
from netutil import free_port  # noqa: E402

MAX_UPLOAD = 2_000_000
MAX_PIXELS = 600 * 600


@pytest.fixture(scope="module")
def client(shared_models):
    app = create_app(Settings(max_upload_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS, workers=2))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo(astronaut) -> bytes:
    return encode_image(astronaut, ".jpg")


def _png(image: np.ndarray) -> bytes:
    return encode_image(image, ".png")


def _pil_bytes(image: np.ndarray, fmt: str) -> bytes:
    pil = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    pil.fromarray(image).save(buf, fmt)
    return buf.getvalue()


def _corrupt_jpeg(photo: bytes) -> bytes:
    # a JPEG signature and end marker around garbage: passes sniffing, fails decoding
    return photo[:20] + bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8)) + b"\xff\xd9"


def _post(c, data: bytes, name: str = "photo.jpg", path: str = "/v1/detect", ctype: str = "image/jpeg"):
    return c.post(path, files={"file": (name, data, ctype)})


# -- 200 --------------------------------------------------------------------------------------------
def test_detect_returns_the_cli_json(client):
    from pathlib import Path

    r = _post(client, Path("examples/three_ways.jpg").read_bytes(), "three_ways.jpg")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"source", "width", "height", "faces", "error"}
    assert (body["source"], body["width"], body["height"], body["error"]) == ("three_ways.jpg", 642, 238, None)
    faces = sorted(body["faces"], key=lambda f: f["box"][0])
    for face in faces:
        assert {"box", "det_score", "label", "confidence", "probs"} <= set(face)
        assert face["label"] in LABELS and list(face["probs"]) == list(LABELS)
    assert [f["label"] for f in faces] == ["without_mask", "with_mask", "mask_worn_incorrectly"]


def test_detect_annotate_returns_a_jpeg(client):
    from pathlib import Path

    r = client.post("/v1/detect", params={"annotate": "true"},
                    files={"file": ("a.jpg", Path("examples/three_ways.jpg").read_bytes())})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"
    assert r.headers["x-maskwatch-faces"] == "3"
    assert set(r.headers["x-maskwatch-labels"].split(",")) == set(LABELS)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "WEBP", "TIFF", "GIF"])
def test_detect_accepts_every_sniffed_format_whatever_the_name(client, astronaut, fmt):
    r = _post(client, _pil_bytes(astronaut, fmt), name="wrong-name.txt", ctype="text/plain")
    assert r.status_code == 200, r.text
    assert r.json()["width"] == 512


def test_detect_empty_image_has_no_faces(client):
    r = _post(client, _png(np.full((240, 320, 3), 128, np.uint8)), "gray.png")
    assert r.status_code == 200 and r.json()["faces"] == []


def test_source_is_a_display_name_never_a_path(client, photo):
    assert _post(client, photo, "../../../etc/passwd").json()["source"] == "passwd"


def test_classify_a_face_crop(client, astronaut, astronaut_face):
    x1, y1, x2, y2 = map(int, astronaut_face)
    r = _post(client, _png(np.ascontiguousarray(astronaut[y1:y2, x1:x2])), "crop.png", path="/v1/classify")
    assert r.status_code == 200
    body = r.json()
    assert body["label"] in LABELS and body["label"] == max(body["probs"], key=body["probs"].get)
    assert 0 <= body["confidence"] <= 1 and (body["width"], body["height"]) == (x2 - x1, y2 - y1)


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_models(client):
    body = client.get("/v1/models").json()
    assert body["pipeline"]["detector"]["name"] == "rfb"  # the photo default: rfb + the classifier's second opinion
    assert body["pipeline"]["classifier"]["file"] == "mask_classifier_int8.onnx"
    # which faces the classifier sees, and how much its word counts: the photo preset's settings
    assert (body["pipeline"]["classifier"]["below"], body["pipeline"]["classifier"]["weight"]) == (0.9, 0.5)
    assert "path" not in body["pipeline"]["classifier"]  # the server's file system stays private
    assert body["limits"] == {"max_upload_bytes": MAX_UPLOAD, "max_pixels": MAX_PIXELS}
    assert {"maskwatch-rfb", "mask-classifier"} <= {f["name"] for f in body["files"] if f["available"]}


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/detect", "/v1/classify", "/healthz", "/v1/models"} <= set(spec["paths"])
    body = spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["file"]


def test_uploads_stay_in_memory(client, astronaut, monkeypatch):
    """A 1 MB+ upload (above the size multipart parsers usually spool to disk) never touches tempfile."""
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    for name in ("NamedTemporaryFile", "SpooledTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    formparsers = pytest.importorskip("starlette.formparsers")  # Starlette's own upload spooling
    if hasattr(formparsers, "SpooledTemporaryFile"):
        monkeypatch.setattr(formparsers, "SpooledTemporaryFile", refuse)
    tall = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:190]]))  # 512x702, both faces whole
    bmp = _pil_bytes(tall, "BMP")
    assert len(bmp) > 2**20 and tall.shape[0] * tall.shape[1] <= MAX_PIXELS
    r = _post(client, bmp, "big.bmp")
    assert r.status_code == 200 and sum(f["det_score"] >= 0.5 for f in r.json()["faces"]) == 2  # both faces


# -- errors: always a JSON body {"error": ...} ---------------------------------------------------------
def _error(r, status: int, contains: str = "") -> str:
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert contains in message
    return message


@pytest.mark.parametrize("path", ["/v1/detect", "/v1/classify"])
@pytest.mark.parametrize("case, status, contains", [
    ("truncated", 400, "truncated"),
    ("corrupt", 400, "not a readable image"),
    ("text", 415, "not a recognised image"),
    ("pdf-named-jpg", 415, "not a recognised image"),
    ("video", 415, "video"),
    ("empty", 415, "empty"),
])
def test_bad_uploads(client, photo, path, case, status, contains):
    data = {
        "truncated": photo[: len(photo) // 2],
        "corrupt": _corrupt_jpeg(photo),
        "text": b"hello, this is not an image\n" * 10,
        "pdf-named-jpg": b"%PDF-1.7\n" + b"0" * 500,
        "video": b"\x00\x00\x00\x18ftypmp42" + b"0" * 500,
        "empty": b"",
    }[case]
    _error(_post(client, data, "x.jpg", path=path), status, contains)


def test_413_upload_too_large_by_content_length(client, photo):
    _error(_post(client, photo + b"\0" * (MAX_UPLOAD + 70_000)), 413, "limit")


def test_413_upload_too_large_while_streaming(client, photo):
    """Without Content-Length (chunked), the limit is enforced while reading the body."""
    boundary = "B0uNd"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'.encode()
    def body():
        yield head + photo
        for _ in range(100):  # up to 6.4 MB, far above the limit
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/v1/detect", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    _error(r, 413, "limit")


def test_413_image_has_too_many_pixels(client):
    _error(_post(client, _png(np.zeros((700, 700, 3), np.uint8)), "huge.png"), 413, "above")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP"])
def test_413_declared_size_refused_before_decoding(client, fmt):
    """A small file whose header declares a huge image (a decompression bomb) is refused unread."""
    import struct

    data = bytearray(_pil_bytes(np.zeros((8, 8, 3), np.uint8), fmt))
    big = 30000
    if fmt == "GIF":
        data[6:10] = struct.pack("<HH", big, big)
    elif fmt == "BMP":
        data[18:26] = struct.pack("<ii", big, big)
    elif fmt == "WEBP":  # lossy VP8: 14-bit sizes
        data[26:30] = struct.pack("<HH", 16000, 16000)
    else:  # TIFF: rewrite the width/height entries of the first IFD
        (ifd,) = struct.unpack("<I", data[4:8])
        (count,) = struct.unpack("<H", data[ifd : ifd + 2])
        for i in range(count):
            at = ifd + 2 + 12 * i
            tag, kind = struct.unpack("<HH", data[at : at + 4])
            if tag in (256, 257):
                data[at + 8 : at + 12] = struct.pack("<HH", big, 0) if kind == 3 else struct.pack("<I", big)
    _error(_post(client, bytes(data), f"bomb.{fmt.lower()}"), 413, "above the limit")


@pytest.mark.parametrize("kwargs", [
    {"files": {"image": ("a.jpg", b"\xff\xd8\xff")}},  # wrong field name
    {"data": {"file": "not a file"}},  # urlencoded form
    {},  # no body
])
def test_422_missing_file_field(client, kwargs):
    _error(client.post("/v1/detect", **kwargs), 422, "'file'")


@pytest.mark.parametrize("trick", ["dup", "many", "long8"])
def test_413_tiff_header_tricks_do_not_bypass_the_gate(client, trick):
    """A duplicated width tag, 600 tags before it, the width as LONG8: each got through to libtiff."""
    import hostile

    _error(_post(client, hostile.tiff_bomb(20000, 20000, trick), "bomb.tif"), 413, "20000x20000")


def test_413_progressive_jpeg_bomb(client):
    import hostile

    _error(_post(client, hostile.progressive_jpeg_bomb(20000, 20000), "bomb.jpg"), 413, "progressive")


@pytest.mark.parametrize("url, status", [
    ("/v1/detect?annotate=maybe", 422),  # a query parameter that is not a boolean
    ("/v1/nowhere", 404),
])
def test_every_4xx_has_the_error_shape(client, photo, url, status):
    r = client.post(url, files={"file": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == status
    assert set(r.json()) == {"error"}, r.json()
    r = client.get("/v1/detect")
    assert r.status_code == 405 and set(r.json()) == {"error"}


def test_trailing_data_after_the_image_is_accepted(client, photo):
    assert _post(client, photo + b"\x00\x00\x00\x18ftypmp42" + bytes(5000)).json()["faces"]


def test_400_malformed_multipart(client):
    r = client.post("/v1/detect", content=b"--XX\r\nthis is not a part header\r\n\r\n",
                    headers={"content-type": "multipart/form-data; boundary=XX"})
    assert r.status_code in (400, 422) and "error" in r.json()


def test_corrupt_then_good_still_works(client, photo):
    for _ in range(3):
        _error(_post(client, _corrupt_jpeg(photo)), 400)
        _error(_post(client, b"garbage"), 415)
        assert _post(client, photo).json()["faces"]


# -- a real server: concurrency over HTTP --------------------------------------------------------------


@pytest.fixture(scope="module")
def server(shared_models):
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    app = create_app(Settings(max_upload_bytes=MAX_UPLOAD, workers=2))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_408_an_upload_slower_than_the_read_timeout(shared_models, photo):
    """A client that sends its body slowly is cut off after read_timeout, with {"error"}."""
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    app = create_app(Settings(workers=1, read_timeout=0.5))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    try:
        boundary = "XyZ"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode()
        body = head + photo + f"\r\n--{boundary}--\r\n".encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                         f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode() + body[:100])
            t0 = time.monotonic()
            reply = sock.recv(65536).decode("latin-1")  # the rest never comes
        assert time.monotonic() - t0 < 5
        assert reply.startswith("HTTP/1.1 408") and '{"error":"the upload was not received within 0.5 s"}' in reply
    finally:
        srv.should_exit = True
        thread.join(10)


def test_concurrent_requests_over_http(server, photo):
    """16 clients at once, good and bad uploads mixed: every answer is right, nothing blocks /healthz."""
    def one(i: int):
        with httpx.Client(base_url=server, timeout=60) as c:
            if i % 4 == 3:
                return "bad", c.post("/v1/detect", files={"file": ("x.jpg", _corrupt_jpeg(photo))}).status_code
            r = c.post("/v1/detect", files={"file": (f"p{i}.jpg", photo)})
            return r.json()["source"], len(r.json()["faces"])

    alone = len(httpx.post(f"{server}/v1/detect", files={"file": ("p.jpg", photo)}, timeout=60).json()["faces"])
    assert alone >= 1
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(one, i) for i in range(32)]
        # the event loop stays free while inference runs in the worker threads
        t0 = time.perf_counter()
        health = httpx.get(f"{server}/healthz", timeout=10)
        health_latency = time.perf_counter() - t0
        results = [f.result() for f in futures]
    assert health.status_code == 200
    assert health_latency < 2.0
    for i, (source, value) in enumerate(results):
        assert (source, value) == (("bad", 400) if i % 4 == 3 else (f"p{i}.jpg", alone))  # as when alone
