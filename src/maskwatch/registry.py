"""Model files resolved by name: package data, a local folder, the cache, or a checked download.

Resolution order for a name:
1. files shipped inside the package (`maskwatch/models/`),
2. the folder named by ``MASKWATCH_MODELS`` (e.g. a shared folder of model files),
3. the cache ``$MASKWATCH_HOME/models`` (default ``~/.cache/maskwatch/models``),
4. a download from the official URL, sha256-checked, renamed into the cache atomically.

Offline (or with ``MASKWATCH_OFFLINE=1``) the error names the file, its sha256 and where to put it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ChecksumError, ModelNotFoundError, UnknownNameError

PACKAGE_MODELS = Path(__file__).parent / "models"


@dataclass(frozen=True)
class ModelFile:
    name: str
    filename: str
    sha256: str | None
    url: str | None
    license: str
    description: str
    how: str | None = None  # how a user makes a file that is neither shipped nor downloadable


MODELS: dict[str, ModelFile] = {
    m.name: m
    for m in [
        ModelFile(
            "yunet",
            "face_detection_yunet_2023mar.onnx",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
            "MIT",
            "OpenCV YuNet face detector (cv2.FaceDetectorYN), OpenCV Zoo 2023mar",
        ),
        ModelFile(
            "ssd",
            "res10_300x300_ssd_iter_140000.caffemodel",
            "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
            "https://raw.githubusercontent.com/opencv/opencv_3rdparty/dnn_samples_face_detector_20170830/res10_300x300_ssd_iter_140000.caffemodel",
            "OpenCV sample model",
            "OpenCV ResNet-10 SSD face detector weights (the tutorials' face detector)",
        ),
        ModelFile(
            "ssd-prototxt",
            "res10_deploy.prototxt",
            "f62621cac923d6f37bd669298c428bb7ee72233b5f8c3389bb893e35ebbcf795",
            "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/dnn/face_detector/deploy.prototxt",
            "OpenCV sample model",
            "network definition of the ResNet-10 SSD face detector",
        ),
        ModelFile(
            "mask-classifier",
            "mask_classifier.onnx",
            None,
            None,
            "see maskwatch/models/MODEL_CARD.md",
            "maskwatch default 3-class mask classifier (ships inside the package)",
        ),
        ModelFile(
            "maskwatch-detector",
            "maskwatch_detector.onnx",
            None,
            None,
            "trained by maskwatch on fmd (CC0); see docs/detection.md",
            "maskwatch face + mask detector, int8 (MobileNetV2 + CenterNet-style head; scripts/build_detector.py)",
        ),
        ModelFile(
            "maskwatch-rfb",
            "maskwatch_rfb.onnx",
            None,
            None,
            "trained by maskwatch on fmd (CC0) + ilc (none stated, research) from Ultra-Light RFB weights (MIT; WIDER FACE CC BY-NC-ND); see models/MODEL_CARD.md",
            "maskwatch single-pass face + mask detector, fp32 (Ultra-Light RFB SSD; scripts/build_rfb.py)",
        ),
        *[
            ModelFile(
                f"{name}-tflite{suffix}",
                f"{stem}_{precision}.tflite",
                None,
                None,
                "as its ONNX original",
                f"LiteRT ({precision}) conversion of {stem}.onnx",
                "make it with 'maskwatch export default --format tflite' (the 'tflite' extra)",
            )
            for name, stem in (("maskwatch-rfb", "maskwatch_rfb"), ("mask-classifier", "mask_classifier"))
            for suffix, precision in (("", "float32"), ("-int8", "int8"))
        ],
        ModelFile(
            "mask-classifier-int8",
            "mask_classifier_int8.onnx",
            None,
            None,
            "see maskwatch/models/MODEL_CARD.md",
            "int8-quantized default mask classifier (ships inside the package)",
        ),
    ]
}


def home() -> Path:
    return Path(os.environ.get("MASKWATCH_HOME", Path.home() / ".cache" / "maskwatch"))


def cache_dir() -> Path:
    return home() / "models"


def model_info(name: str) -> ModelFile:
    """The registered model file ``name``; `UnknownNameError` lists the known names."""
    if name not in MODELS:
        raise UnknownNameError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def candidates(name: str) -> list[Path]:
    """Where `resolve` looks for a model, in order."""
    info = model_info(name)
    places = [PACKAGE_MODELS / info.filename]
    if os.environ.get("MASKWATCH_MODELS"):
        places.append(Path(os.environ["MASKWATCH_MODELS"]) / info.filename)
    places.append(cache_dir() / info.filename)
    return places


def find(name: str) -> Path | None:
    """The local path of a model, or ``None`` if it would have to be downloaded."""
    return next((p for p in candidates(name) if p.is_file()), None)


def resolve(name: str, download: bool = True, progress: bool = True) -> Path:
    """Local path of model ``name``, downloading it into the cache if needed and allowed."""
    info = model_info(name)
    found = find(name)
    if found is not None:
        return found
    offline = os.environ.get("MASKWATCH_OFFLINE", "") not in ("", "0")
    if not download or offline or info.url is None:
        raise ModelNotFoundError(_missing_message(info))
    return fetch(name, progress=progress)


def _missing_message(info: ModelFile, reason: str = "") -> str:
    where = cache_dir() / info.filename
    sha = f" (sha256 {info.sha256})" if info.sha256 else ""
    src = f" from {info.url}" if info.url else ""
    extra = f": {reason}" if reason else ""
    how = f"; {info.how}" if info.how else ""
    return (
        f"model '{info.name}' not found{extra}. Put {info.filename}{sha}{src} at {where}, "
        f"or in the folder named by MASKWATCH_MODELS{how}"
    )


def fetch(name: str, progress: bool = True, force: bool = False) -> Path:
    """Download model ``name`` into the cache, check its sha256 and rename it into place."""
    info = model_info(name)
    target = cache_dir() / info.filename
    if target.is_file() and not force:
        return target
    if info.url is None:
        raise ModelNotFoundError(_missing_message(info, "it is not downloadable"))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=info.filename + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(info.url, out, progress, info.filename)
        verify(tmp, info)
        os.replace(tmp, target)
    except ChecksumError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:  # URLError is an OSError
        tmp.unlink(missing_ok=True)
        raise ModelNotFoundError(_missing_message(info, f"download failed ({exc})")) from exc
    return target


def _download(url: str, out, progress: bool, label: str) -> None:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (fixed https URLs)
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))


def verify(path: Path, info: ModelFile | str) -> None:
    """Raise `ChecksumError` if ``path`` does not have the registered sha256."""
    info = model_info(info) if isinstance(info, str) else info
    if info.sha256 is None:
        return
    actual = sha256sum(path)
    if actual != info.sha256:
        raise ChecksumError(f"{path}: sha256 {actual} does not match the expected {info.sha256} for '{info.name}'")
