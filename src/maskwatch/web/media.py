"""Uploaded photos and short videos -> annotated media + results, for the web app (no Streamlit here).

Photos are decoded from memory. A video has to be a file for ``cv2.VideoCapture``: it is written to a
`tempfile.NamedTemporaryFile` private to the call (random name, mode 0600) and deleted right after,
as is the annotated video written back; at most ``max_frames`` frames are read.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from ..annotate import annotate
from ..errors import ImageReadError
from ..faces import Faces
from ..imageio import decode_image, encode_image
from ..labels import LABELS
from .uploads import check_image_bytes, sniff

#: At most this many frames of an uploaded video are processed (about 20 s at 15 fps).
DEFAULT_MAX_FRAMES = 300


@dataclass
class ImageResult:
    name: str
    image: np.ndarray
    annotated: np.ndarray
    faces: Faces

    @property
    def record(self) -> dict[str, Any]:
        return self.faces.to_dict()

    def jpeg(self, quality: int = 90) -> bytes:
        return encode_image(self.annotated, ".jpg", quality)


@dataclass
class VideoResult:
    name: str
    video: bytes  # annotated, WebM (VP8): plays in every browser
    fps: float
    frames: int  # frames processed
    total_frames: int  # frames in the upload (as reported by the container; 0 if unknown)
    records: list[dict[str, Any]] = field(default_factory=list)  # one per frame, "frame" added

    @property
    def truncated(self) -> bool:
        return self.total_frames > self.frames


def faces_table(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per face: label, confidence, detector score and box (for a table)."""
    rows = []
    for i, face in enumerate(record["faces"]):
        x1, y1, x2, y2 = face["box"]
        rows.append({"face": i + 1, "label": face.get("label", "face"), "confidence": face.get("confidence"),
                     "det_score": face["det_score"], "x1": x1, "y1": y1, "x2": x2, "y2": y2})
    return rows


def label_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Faces per label over ``records`` (every label present, zeros included)."""
    counts = dict.fromkeys(LABELS, 0)
    for record in records:
        for face in record["faces"]:
            label = face.get("label", "face")
            counts[label] = counts.get(label, 0) + 1
    return counts


def process_image(pipe, data: bytes, name: str, blur: bool = False) -> ImageResult:
    """Decode ``data`` (an image; the type is sniffed) and run ``pipe`` on it."""
    check_image_bytes(data, name, pipe.max_pixels)
    image = decode_image(data, name=name, max_pixels=pipe.max_pixels)
    faces = pipe.detect(image, source=name)
    return ImageResult(name, image, annotate(image, faces, blur=blur), faces)


def process_video(pipe, data: bytes, name: str, blur: bool = False, max_frames: int = DEFAULT_MAX_FRAMES,
                  progress: Callable[[int, int], None] | None = None) -> VideoResult:
    """Run ``pipe`` on every frame (up to ``max_frames``) of an uploaded video; see module docstring."""
    suffix = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "avi": ".avi"}.get(sniff(data) or "", ".bin")
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="maskwatch-upload-") as src, \
            tempfile.NamedTemporaryFile(suffix=".webm", prefix="maskwatch-annotated-") as dst:
        src.write(data)
        src.flush()
        cap = cv2.VideoCapture(src.name)
        try:
            if not cap.isOpened():
                raise ImageReadError(f"{name}: not a readable video")
            fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
            fps = fps if 0 < fps <= 240 else 25.0
            total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            todo = min(total, max_frames) if total > 0 else max_frames
            writer = None
            records: list[dict[str, Any]] = []
            while len(records) < max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                faces = pipe.detect(rgb, source=f"{name}#{len(records)}")
                if writer is None:
                    h, w = rgb.shape[:2]
                    writer = cv2.VideoWriter(dst.name, cv2.VideoWriter_fourcc(*"VP80"), fps, (w, h))
                writer.write(cv2.cvtColor(annotate(rgb, faces, blur=blur), cv2.COLOR_RGB2BGR))
                record = faces.to_dict()
                record["frame"] = len(records)
                records.append(record)
                if progress:
                    progress(len(records), todo)
        finally:
            cap.release()
        if writer is None:
            raise ImageReadError(f"{name}: the video has no readable frames")
        writer.release()
        video = open(dst.name, "rb").read()  # noqa: SIM115 - the temp file closes (and is deleted) below
    return VideoResult(name, video, fps, len(records), max(total, len(records)), records)


def video_counts_per_frame(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per label, the number of faces in each frame (for a line chart)."""
    out = {label: [] for label in LABELS}
    for record in records:
        counts = label_counts([record])
        for label in LABELS:
            out[label].append(counts[label])
    return out

