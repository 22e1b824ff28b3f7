"""The maskwatch web app (Streamlit). Start it with ``maskwatch app``.

Upload one or many photos or a short video; see the annotated result, a table of faces, counts per
label and a chart; tune the detector in the sidebar; download the annotated image/video and the JSON.
The camera tab takes a snapshot from the browser's camera.

Everything runs in memory (a video goes through a temporary file private to the request); the
pipeline is built once per sidebar setting and shared by the sessions, behind a lock, because OpenCV's
face detector must not run in two threads at once.
"""

from __future__ import annotations

import json
import threading

import pandas as pd
import streamlit as st

from maskwatch.detectors import entry, names as detector_names
from maskwatch.errors import MaskwatchError
from maskwatch.labels import COLORS, LABELS
from maskwatch.pipeline import load
from maskwatch.presets import PRESETS
from maskwatch.web.media import (
    DEFAULT_MAX_FRAMES,
    faces_table,
    label_counts,
    process_image,
    process_video,
    video_counts_per_frame,
)
from maskwatch.web.uploads import IMAGE_TYPES, VIDEO_TYPES, safe_name, sniff

UPLOAD_SUFFIXES = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif", "mp4", "mov", "webm", "avi", "mkv"]


class LockedPipeline:
    """A pipeline that runs one image at a time (Streamlit sessions are threads)."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.max_pixels = pipe.max_pixels
        self._lock = threading.Lock()

    def detect(self, image, source=None):
        with self._lock:
            return self.pipe.detect(image, source=source)


@st.cache_resource(show_spinner="Loading models ...", max_entries=4)
def get_pipeline(detector: str, scale: float | None, score_threshold: float | None, min_face: float) -> LockedPipeline:
    return LockedPipeline(load(detector=detector, scale=scale, score_threshold=score_threshold, min_face=min_face))


def sidebar() -> dict:
    st.sidebar.header("Detector")
    names = detector_names()
    detector = st.sidebar.selectbox("Face detector", names, index=names.index(PRESETS["photo"].detector),
                                    help="rfb: maskwatch's single-pass detector (default, fastest); yunet+maskwatch: finds the most faces; "
                                         "ssd / haar: the classic tutorials' detectors")
    measured = entry(detector).defaults
    scales = ["auto"] + [x / 4 for x in range(2, 13)]  # auto: the measured default; 0.5 ... 3.0
    scale = st.sidebar.select_slider("Input scale", scales, "auto", key=f"scale-{detector}",
                                     help="auto: the measured default (small photos upscaled); >1 finds smaller "
                                          "faces, slower")
    scores = ["auto"] + [x / 20 for x in range(1, 20)]  # 0.05 ... 0.95
    score = st.sidebar.select_slider("Face score threshold", scores, "auto", key=f"score-{detector}",
                                     help=f"auto: the measured default ({measured.get('score_threshold', 'per detector')})")
    min_face = st.sidebar.number_input("Ignore faces smaller than (px)", 0, 500, 0, 4)
    st.sidebar.header("Output")
    blur = st.sidebar.checkbox("Blur faces (privacy)", False)
    max_frames = st.sidebar.number_input("Video: max frames", 10, 3000, DEFAULT_MAX_FRAMES, 10)
    return {"detector": detector, "scale": None if scale == "auto" else scale,
            "score_threshold": None if score == "auto" else score, "min_face": float(min_face),
            "blur": blur, "max_frames": int(max_frames)}


def show_counts(counts: dict[str, int]) -> None:
    import altair as alt

    cols = st.columns(len(counts))
    for col, (label, n) in zip(cols, counts.items(), strict=True):
        col.metric(label, n)
    frame = pd.DataFrame({"label": list(counts), "faces": list(counts.values())})
    domain = list(counts)
    colors = ["#{:02x}{:02x}{:02x}".format(*COLORS.get(label, (80, 160, 255))) for label in domain]
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("label:N", sort=domain, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("faces:Q", title="faces", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("label:N", scale=alt.Scale(domain=domain, range=colors), legend=None))
    st.altair_chart(chart.properties(height=220), width="stretch")


def show_image(result, index: int) -> dict:
    record = result.record
    left, right = st.columns([1, 1])
    left.image(result.annotated, caption=f"{result.name}: {len(result.faces)} face(s)", width="stretch")
    with right:
        rows = faces_table(record)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        else:
            st.info("No faces found. Try a larger input scale or a lower score threshold.")
        stem = result.name.rsplit(".", 1)[0]
        st.download_button("Annotated image (JPEG)", result.jpeg(), f"{stem}_annotated.jpg", "image/jpeg",
                           key=f"img-{index}")
        st.download_button("Result (JSON)", json.dumps(record, indent=2), f"{stem}.json", "application/json",
                           key=f"json-{index}")
    return record


def show_video(result, index: int) -> list[dict]:
    st.video(result.video, format="video/webm")
    note = f" (first {result.frames} of {result.total_frames} frames)" if result.truncated else ""
    st.caption(f"{result.name}: {result.frames} frames at {result.fps:.1f} fps{note}")
    per_frame = pd.DataFrame(video_counts_per_frame(result.records))
    per_frame.index.name = "frame"
    st.line_chart(per_frame, height=200)
    stem = result.name.rsplit(".", 1)[0]
    st.download_button("Annotated video (WebM)", result.video, f"{stem}_annotated.webm", "video/webm",
                       key=f"vid-{index}")
    st.download_button("Result (JSON lines)", "\n".join(json.dumps(r) for r in result.records) + "\n",
                       f"{stem}.jsonl", "application/x-ndjson", key=f"vjson-{index}")
    return result.records


def process_uploads(files, pipe, opts: dict) -> None:
    records: list[dict] = []
    sections = []
    for i, upload in enumerate(files):
        name = safe_name(upload.name)
        data = upload.getvalue()
        kind = sniff(data)
        try:
            if kind in IMAGE_TYPES:
                sections.append(("image", i, process_image(pipe, data, name, blur=opts["blur"])))
            elif kind in VIDEO_TYPES:  # sniffed; Matroska (.mkv) sniffs as webm
                bar = st.progress(0.0, text=f"{name}: processing frames ...")

                def report(done: int, total: int, bar=bar, name=name) -> None:
                    bar.progress(min(1.0, done / max(total, 1)), text=f"{name}: frame {done}/{total}")

                result = process_video(pipe, data, name, blur=opts["blur"], max_frames=opts["max_frames"],
                                       progress=report)
                bar.empty()
                sections.append(("video", i, result))
            else:
                st.error(f"{name}: not an image or a video this app can read")
        except MaskwatchError as exc:
            st.error(str(exc))
    if not sections:
        return
    for kind, _, result in sections:
        records.extend(result.records if kind == "video" else [result.record])
    for kind, i, result in sections:
        st.subheader(result.name)
        if kind == "image":
            show_image(result, i)
        else:
            show_video(result, i)
    st.subheader(f"Faces per label, all {len(sections)} uploads" if len(sections) > 1 else "Faces per label")
    show_counts(label_counts(records))


def main() -> None:
    st.set_page_config(page_title="maskwatch", page_icon=":mask:", layout="wide")
    st.title("maskwatch")
    st.caption("Find every face and tell whether it wears a mask: "
               + " / ".join(f"**{label}**" for label in LABELS))
    opts = sidebar()
    try:
        pipe = get_pipeline(opts["detector"], opts["scale"], opts["score_threshold"], opts["min_face"])
    except MaskwatchError as exc:
        st.error(f"Could not load the models: {exc}")
        st.stop()
    photos, camera = st.tabs(["Photos and video", "Camera"])
    with photos:
        files = st.file_uploader("Upload photos or a short video", type=UPLOAD_SUFFIXES, accept_multiple_files=True)
        if files:
            process_uploads(files, pipe, opts)
    with camera:
        shot = st.camera_input("Take a photo with your camera")
        if shot is not None:
            process_uploads([shot], pipe, opts)


main()
