"""Serve the REST API (FastAPI + uvicorn): POST /v1/detect, POST /v1/classify, GET /healthz, GET /v1/models.

Models are loaded once at start-up; inference runs in --workers threads (one face detector each, one
shared classifier). Binds to 127.0.0.1 unless --host says otherwise. OpenAPI docs: http://HOST:PORT/docs
Needs the `serve` extra: pip install "maskwatch[serve]".
"""

from __future__ import annotations

import argparse

HELP = "serve the REST API (FastAPI)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..web.uploads import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MAX_UPLOAD_PIXELS, DEFAULT_READ_TIMEOUT
    from .common import add_detector_arguments

    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--workers", type=int, default=None,
                   help="inference threads, one detector each (default: the number of CPU cores, at most 8)")
    p.add_argument("--opencv-threads", type=int, default=1,
                   help="OpenCV thread pool size (0: OpenCV's default, one per core); parallelism comes from --workers")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_BYTES / 2**20,
                   help="largest accepted upload in MiB (413 above it)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_UPLOAD_PIXELS,
                   help="largest accepted image in pixels (413 above it)")
    p.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT,
                   help="seconds a client has to send a whole upload (408 after it)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level")
    add_detector_arguments(p, preset="api", calibrate=False)  # the API keeps each detector's choice


def settings_from_args(args: argparse.Namespace):
    from ..web.api import Settings
    from .common import classifier_from_args

    extra = {"workers": args.workers} if args.workers else {}
    return Settings(detector=args.detector, scale=args.scale, score_threshold=args.score_threshold,
                    min_face=args.min_face, tile=args.tile, min_side=args.min_side,
                    classifier=classifier_from_args(args),
                    max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                    opencv_threads=args.opencv_threads, read_timeout=args.read_timeout, **extra)


def run(args: argparse.Namespace) -> int:
    from .common import require

    require("serve", "serve", "fastapi", "uvicorn", "python_multipart|multipart")
    import uvicorn

    from ..web.api import create_app

    app = create_app(settings_from_args(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
