"""The maskwatch REST API (FastAPI): ``create_app(Settings(...))``, served by ``maskwatch serve``.

Endpoints: ``POST /v1/detect`` (multipart field ``file`` -> the per-image JSON of ``maskwatch detect``,
or with ``?annotate=true`` the annotated JPEG), ``POST /v1/classify`` (a face crop -> its label),
``GET /healthz``, ``GET /v1/models``; OpenAPI docs at ``/docs``.

Models are loaded once, at start-up: one shared ONNX Runtime classifier session (thread-safe) and one
face detector per worker thread (``cv2.FaceDetectorYN`` must not be shared across threads). All
decoding, inference and encoding runs in ``workers`` threads, so the event loop only moves bytes.

Status codes: 200; 400 corrupt image or malformed body; 408 upload not received within
``read_timeout``; 413 upload or image too large; 415 not an image (sniffed from the bytes, never taken
from the name or Content-Type); 422 missing field or invalid parameter; errors always (every 4xx,
validation errors included) as ``{"error": "..."}``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import anyio
import cv2
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from python_multipart.exceptions import MultipartParseError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ImageReadError, ImageTooLargeError, MaskwatchError
from ..imageio import decode_image, encode_image
from ..presets import PRESETS
from .uploads import (
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_PIXELS,
    DEFAULT_READ_TIMEOUT,
    MissingFieldError,
    UnsupportedMediaError,
    UploadTooLargeError,
    check_image_bytes,
    read_multipart_file,
    safe_name,
)

log = logging.getLogger(__name__)

class UploadTimeoutError(MaskwatchError):
    """An upload was not received within the read timeout (HTTP 408)."""


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class Settings:
    """Configuration of one API instance (``maskwatch serve`` flags map onto these fields)."""

    detector: str = field(default_factory=lambda: PRESETS["api"].detector)  # maskwatch.presets
    scale: float | None = None  # None: the measured best for the detector
    score_threshold: float | None = None
    min_face: float = 0.0
    tile: int | None = None  # tiled detection of larger uploads (maskwatch.detectors.tiling)
    min_side: int | None = None  # upscale smaller images to this longer side (None: the detector's measured one)
    classifier: str | None = "auto"  # "auto" (maskwatch.load), "default", a path to an ONNX classifier, or None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS
    workers: int = field(default_factory=_default_workers)  # inference threads, one detector each
    threads_per_worker: int = 1  # ONNX Runtime intra-op threads of the shared classifier session
    opencv_threads: int = 1  # OpenCV's thread pool size, process-wide (0: OpenCV's default); 1: workers x 1 thread
    jpeg_quality: int = 90
    read_timeout: float = DEFAULT_READ_TIMEOUT  # seconds to receive a whole upload (408 after it)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.max_upload_bytes < 1 or self.max_pixels < 1:
            raise ValueError("max_upload_bytes and max_pixels must be positive")


class PipelinePool:
    """``workers`` pipelines sharing one classifier; `run` lends one to a function, in a worker thread.

    The pool is used through `run` only, which a `anyio.CapacityLimiter` of the same size guards, so a
    pipeline is never used by two threads at once.
    """

    def __init__(self, settings: Settings, factory: Callable[[Settings, Any], Any] | None = None):
        from ..classifier import MaskClassifier
        from ..pipeline import load, resolve_classifier

        self.settings = settings
        clf, how = resolve_classifier(settings.detector, settings.classifier, "api")
        if clf is not None:
            clf = MaskClassifier(None if clf == "default" else clf, threads=settings.threads_per_worker)
        self.classifier = clf

        def default_factory(s: Settings, classifier: Any):
            return load(detector=s.detector, classifier=classifier, scale=s.scale, preset="api",
                        score_threshold=s.score_threshold, min_face=s.min_face, tile=s.tile, min_side=s.min_side,
                        max_pixels=s.max_pixels, **how)

        make = factory or default_factory
        self.pipelines = [make(settings, clf) for _ in range(settings.workers)]
        # /v1/classify labels crops with the classifier, also where detection needs none (one pass)
        self.crop_classifier = clf
        if clf is None and settings.classifier is not None:
            self.crop_classifier = MaskClassifier(threads=settings.threads_per_worker)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for pipe in self.pipelines:
            self._free.put(pipe)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(pipeline, *args)`` with a pipeline nobody else is using (blocking; call in a thread)."""
        pipe = self._free.get()
        try:
            return fn(pipe, *args)
        finally:
            self._free.put(pipe)

    def describe(self) -> dict[str, Any]:
        described = self.pipelines[0].describe()
        det = described["detector"]
        out: dict[str, Any] = {
            "detector": {"name": det["name"], "scale": det.get("scale"), "score_threshold": det.get("score_threshold")},
            "min_face": described["min_face"],
            "classifier": None,
            "workers": len(self.pipelines),
        }
        if described["classifier"] is not None:
            keys = ("file", "labels", "model_labels", "input_size", "weight", "below")  # not its path
            out["classifier"] = {k: described["classifier"][k] for k in keys}
        return out


# -- work done in the worker threads (pure functions of bytes + a pipeline) ---------------------------
#: After an image of more pixels than this, freed memory is handed back to the system at once
#: (glibc keeps freed arenas otherwise: +150 MB of RSS after one 36 MP upload, measured).
_TRIM_AFTER_PIXELS = 4_000_000


def _release_memory() -> None:
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _detect_job(pipe, data: bytes, name: str, annotate_: bool, blur: bool, quality: int):
    from ..annotate import annotate

    image = decode_image(data, name=name, max_pixels=pipe.max_pixels)
    large = image.shape[0] * image.shape[1] > _TRIM_AFTER_PIXELS
    faces = pipe.detect(image, source=name)
    jpeg = encode_image(annotate(image, faces, blur=blur), ".jpg", quality) if annotate_ else None
    del image
    if large:
        _release_memory()
    return faces.to_dict(), jpeg


def _classify_job(pipe, data: bytes, name: str, classifier) -> dict[str, Any]:
    from ..labels import LABELS

    image = decode_image(data, name=name, max_pixels=pipe.max_pixels)
    probs = classifier.classify_image(image)
    i = int(np.argmax(probs))
    h, w = image.shape[:2]
    return {"source": name, "width": w, "height": h, "label": LABELS[i], "confidence": round(float(probs[i]), 4),
            "probs": {n: round(float(p), 4) for n, p in zip(LABELS, probs, strict=True)}, "error": None}


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "an image (JPEG, PNG, BMP, WebP, TIFF, GIF); the type is "
                                                   "sniffed from the bytes"}},
        }}},
    },
}

_DETECT_EXAMPLE = {
    "source": "photo.jpg", "width": 640, "height": 480, "error": None,
    "faces": [{"box": [225.9, 47.5, 335.4, 167.4], "det_score": 0.9494, "label": "with_mask", "confidence": 0.9028,
               "probs": {"with_mask": 0.9028, "without_mask": 0.0013, "mask_worn_incorrectly": 0.0959},
               "landmarks": [[256.5, 95.8], [307.3, 97.9], [281.5, 123.4], [256.2, 134.7], [303.4, 136.6]]}],
}

_ERRORS = {code: {"description": text, "content": {"application/json": {"example": {"error": "..."}}}}
           for code, text in [(400, "corrupt image or malformed body"), (408, "upload not received in time"),
                              (413, "upload or image too large"), (415, "not an image"),
                              (422, "no 'file' field, or an invalid parameter")]}


def create_app(settings: Settings | None = None, pipeline_factory: Callable[[Settings, Any], Any] | None = None):
    """The FastAPI application. Models load in the lifespan (start-up), once.

    Args:
        settings: detector, thresholds, limits and worker count (defaults: `Settings()`).
        pipeline_factory: ``(settings, classifier) -> Pipeline``; for tests and custom detectors.
    """
    from .. import __version__, registry

    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        started = time.perf_counter()
        previous_cv_threads = cv2.getNumThreads()
        if settings.opencv_threads > 0:
            cv2.setNumThreads(settings.opencv_threads)
        app.state.pool = await anyio.to_thread.run_sync(PipelinePool, settings, pipeline_factory)
        app.state.limiter = anyio.CapacityLimiter(settings.workers)
        log.info("maskwatch API ready in %.1f s: %s", time.perf_counter() - started, app.state.pool.describe())
        yield
        app.state.pool = None
        cv2.setNumThreads(previous_cv_threads)

    try:  # /docs served from the package (Swagger UI 5), not from a CDN: works offline
        from fastapi_offline import FastAPIOffline as make_app
    except ImportError:  # pragma: no cover - plain FastAPI: /docs loads Swagger UI from a CDN
        make_app = FastAPI
    app = make_app(title="maskwatch", version=__version__, lifespan=lifespan,
                  description="Face-mask detection: find faces and label each with_mask / without_mask / "
                              "mask_worn_incorrectly. Uploads are read in memory; the image type is sniffed "
                              "from the bytes.")
    app.state.settings = settings

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # last resort: a JSON body, logged
        log.exception("unexpected error on %s", request.url.path)
        return error(500, f"internal error ({type(exc).__name__})")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):  # 422 as {"error"}, not {"detail"}
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body", "path"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
        return error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):  # 404, 405, ... as {"error"}
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def upload(request: Request) -> tuple[bytes, str]:
        """The ``file`` field's bytes and display name; limit, sniffing and field errors raised typed."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_bytes + 65536:
            raise UploadTooLargeError(f"request body of {length} bytes is above the limit of "
                                      f"{settings.max_upload_bytes} bytes")
        try:  # a client that sends slower than this holds a connection, not a worker, and is cut off
            with anyio.fail_after(settings.read_timeout):
                part = await read_multipart_file(request.stream(), request.headers.get("content-type", ""), "file",
                                                 settings.max_upload_bytes)
        except TimeoutError:
            raise UploadTimeoutError(f"the upload was not received within {settings.read_timeout:g} s") from None
        name = safe_name(part.filename)
        data = bytes(part.data)
        check_image_bytes(data, name, settings.max_pixels)
        return data, name

    async def in_worker(fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(app.state.pool.call, fn, *args, limiter=app.state.limiter)

    async def guarded(work: Callable[[], Any]):
        try:
            return await work()
        except UploadTooLargeError as exc:
            return error(413, str(exc))
        except ImageTooLargeError as exc:
            return error(413, str(exc))
        except UnsupportedMediaError as exc:
            return error(415, str(exc))
        except MissingFieldError as exc:
            return error(422, str(exc))
        except UploadTimeoutError as exc:
            return error(408, str(exc))
        except (ImageReadError, MultipartParseError) as exc:
            return error(400, str(exc))

    @app.post("/v1/detect", openapi_extra=_UPLOAD_BODY, responses={
        200: {"description": "the faces found (JSON), or the annotated image with annotate=true",
              "content": {"application/json": {"example": _DETECT_EXAMPLE}, "image/jpeg": {}}}, **_ERRORS})
    async def detect(
        request: Request,
        annotate: bool = Query(False, description="return the annotated JPEG instead of JSON"),
        blur: bool = Query(False, description="with annotate: blur every face (privacy)"),
    ):
        """Find every face in an uploaded image and label its mask; the JSON is that of ``maskwatch detect``."""
        async def work():
            data, name = await upload(request)
            record, jpeg = await in_worker(_detect_job, data, name, annotate, blur, settings.jpeg_quality)
            if jpeg is None:
                return JSONResponse(record)
            labels = [f.get("label", "face") for f in record["faces"]]
            return Response(jpeg, media_type="image/jpeg", headers={
                "X-Maskwatch-Faces": str(len(labels)),
                "X-Maskwatch-Labels": ",".join(labels)})
        return await guarded(work)

    @app.post("/v1/classify", openapi_extra=_UPLOAD_BODY, responses=_ERRORS)
    async def classify(request: Request):
        """Label an image that is already a face crop (no detection)."""
        if settings.classifier is None:
            return error(404, "this server runs without a mask classifier")

        async def work():
            data, name = await upload(request)
            return JSONResponse(await in_worker(_classify_job, data, name, app.state.pool.crop_classifier))
        return await guarded(work)

    @app.get("/healthz")
    async def healthz(request: Request):
        """Liveness and readiness: ``ok`` once the models are loaded."""
        ready = getattr(request.app.state, "pool", None) is not None
        body = {"status": "ok" if ready else "starting", "version": __version__, "workers": settings.workers}
        return body if ready else JSONResponse(body, status_code=503)

    @app.get("/v1/models")
    async def models(request: Request):
        """The loaded pipeline, the limits, and every model file maskwatch knows (and whether it is present)."""
        return {
            "pipeline": request.app.state.pool.describe(),
            "limits": {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels},
            "files": [{"name": m.name, "filename": m.filename, "license": m.license, "description": m.description,
                       "available": registry.find(m.name) is not None} for m in registry.MODELS.values()],
        }

    return app
