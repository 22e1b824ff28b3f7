"""The maskwatch web app (Streamlit). Start it with ``maskwatch app``.

* **Photos and video**: upload one or many photos or a short video. A photo shows the annotated
  image, a table of its faces and downloads; a video goes through what ``maskwatch watch`` runs
  (source, tracker, label smoother, H.264 writer): the annotated video, unique tracked people per
  label, people per label over time, downloads of the MP4 and of ``watch --jsonl``'s JSON lines.
* **Live camera**: the browser's camera over WebRTC (streamlit-webrtc), each frame through the same
  tracker and smoother, sent back with boxes and labels, with live counts beside it. No STUN or
  TURN server is asked for: on localhost (and a LAN) the browser and the app connect directly.
* **Snapshot**: one photo from the browser's camera.

Results are kept in the session (``st.session_state``), keyed by the SHA-256 of the upload and the
settings that shape the result, so a rerun (a download, another widget) never processes again.
Everything runs in memory (a video goes through a temporary folder private to the call); the
pipelines are built once per sidebar setting and shared by the sessions (`SharedPipeline`).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict

import pandas as pd
import streamlit as st

from maskwatch.detectors import entry, names as detector_names
from maskwatch.errors import MaskwatchError
from maskwatch.labels import COLORS, LABELS
from maskwatch.pipeline import load
from maskwatch.presets import PRESETS
from maskwatch.video import video_pipeline
from maskwatch.web.media import (
    DEFAULT_MAX_FRAMES,
    LiveView,
    SharedPipeline,
    VideoResult,
    faces_table,
    label_counts,
    process_image,
    process_video,
    result_key,
)
from maskwatch.web.uploads import IMAGE_TYPES, VIDEO_TYPES, safe_name, sniff

UPLOAD_SUFFIXES = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif", "mp4", "mov", "webm", "avi", "mkv"]
#: Results kept per browser session, at most this many and this many bytes (the oldest go first).
MAX_RESULTS = 16
MAX_RESULT_BYTES = 512 * 2**20
#: No ICE servers: nothing outside is asked; browser and app meet on the host's own addresses.
RTC_CONFIGURATION = {"iceServers": []}


@st.cache_resource(show_spinner="Loading models ...", max_entries=4)
def get_pipeline(detector: str, scale: float | None, score_threshold: float | None, min_face: float) -> SharedPipeline:
    return SharedPipeline(load(detector=detector, scale=scale, score_threshold=score_threshold, min_face=min_face))


@st.cache_resource(show_spinner="Loading models ...", max_entries=4)
def get_video_pipeline(detector: str, scale: float | None, score_threshold: float | None,
                       min_face: float) -> SharedPipeline:
    return SharedPipeline(video_pipeline(detector, scale=scale, score_threshold=score_threshold, min_face=min_face))


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


def _hex(label: str) -> str:
    return "#{:02x}{:02x}{:02x}".format(*COLORS.get(label, (80, 160, 255)))


def show_counts(counts: dict[str, int], what: str = "faces", key: str = "counts") -> None:
    """One number per label, and a bar chart whose labels are never cut short."""
    import altair as alt

    cols = st.columns(len(counts))
    for col, (label, n) in zip(cols, counts.items(), strict=True):
        col.metric(label, n)
    frame = pd.DataFrame({"label": list(counts), what: list(counts.values())})
    domain = list(counts)
    chart = alt.Chart(frame).mark_bar().encode(  # horizontal: a label has the whole left margin
        y=alt.Y("label:N", sort=domain, title=None,
                axis=alt.Axis(labelLimit=0, labelOverlap=False, labelFontSize=13)),
        x=alt.X(f"{what}:Q", title=what, axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("label:N", scale=alt.Scale(domain=domain, range=[_hex(label) for label in domain]),
                        legend=None))
    st.altair_chart(chart.properties(height=44 * len(domain) + 20), width="stretch", key=key)


def people_over_time_chart(per_second: list[dict[str, int]], key: str) -> None:
    """Tracked people per label in each second of the video (stacked bars: one count per second)."""
    import altair as alt

    rows = [{"second": r["second"], "label": label, "rank": rank, "people": r[label]}
            for r in per_second for rank, label in enumerate(LABELS)]
    if not rows:
        return
    chart = alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("second:O", title="second of the video", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("sum(people):Q", title="people in view", axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("label:N", scale=alt.Scale(domain=list(LABELS), range=[_hex(label) for label in LABELS]),
                        legend=alt.Legend(orient="bottom", title=None, labelLimit=0)),
        order=alt.Order("rank:Q"))  # with_mask at the bottom
    st.altair_chart(chart.properties(height=220), width="stretch", key=key)


def show_image(result, index: int) -> None:
    left, right = st.columns([1, 1])
    left.image(result.annotated, caption=f"{result.name}: {len(result.faces)} face(s)", width="stretch")
    with right:
        rows = faces_table(result.record)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        else:
            st.info("No faces found. Try a larger input scale or a lower score threshold.")
        stem = result.name.rsplit(".", 1)[0]
        st.download_button("Annotated image (JPEG)", result.jpeg(), f"{stem}_annotated.jpg", "image/jpeg",
                           key=f"img-{index}", on_click="ignore")
        st.download_button("Result (JSON)", json.dumps(result.record, indent=2), f"{stem}.json", "application/json",
                           key=f"json-{index}", on_click="ignore")


def show_video(result, index: int) -> None:
    st.video(result.video, format="video/mp4")
    note = f" (first {result.frames} of {result.total_frames} frames)" if result.truncated else ""
    st.caption(f"{result.name}: {result.frames} frames at {result.fps:.1f} fps{note}; processed in "
               f"{result.elapsed:.2f} s ({result.processing_fps:.1f} frames/s), {result.codec.upper()}")
    people = result.people
    st.markdown(f"**{result.summary.get('unique_tracks', 0)} people** (unique tracks; "
                f"{result.summary.get('faces_seen', 0)} face-frames)")
    cols = st.columns(len(people))
    for col, (label, n) in zip(cols, people.items(), strict=True):
        col.metric(f"people {label}", n)
    people_over_time_chart(result.per_second, key=f"vchart-{index}")
    stem = result.name.rsplit(".", 1)[0]
    left, right = st.columns(2)
    left.download_button(f"Annotated video (MP4, {result.codec.upper()})", result.video, f"{stem}_annotated.mp4",
                         "video/mp4", key=f"vid-{index}", on_click="ignore")
    right.download_button("Result (JSON lines, as watch --jsonl)", result.jsonl, f"{stem}.jsonl",
                          "application/x-ndjson", key=f"vjson-{index}", on_click="ignore")


def _results() -> OrderedDict:
    return st.session_state.setdefault("results", OrderedDict())


def _nbytes(result) -> int:
    if isinstance(result, VideoResult):
        return len(result.video) + len(result.jsonl)
    return result.image.nbytes + result.annotated.nbytes


def _remember(key: str, result) -> None:
    results = _results()
    results[key] = result
    results.move_to_end(key)
    while len(results) > 1 and (len(results) > MAX_RESULTS
                                or sum(_nbytes(r) for r in results.values()) > MAX_RESULT_BYTES):
        results.popitem(last=False)


def run_video(data: bytes, name: str, opts: dict):
    pipe = get_video_pipeline(opts["detector"], opts["scale"], opts["score_threshold"], opts["min_face"])
    bar = st.progress(0.0, text=f"{name}: processing frames ...")
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25 or done >= total:  # a few updates a second: drawing costs time
            last[0] = now
            bar.progress(min(1.0, done / max(total, 1)), text=f"{name}: frame {done}/{total}")

    try:
        return process_video(pipe, data, name, blur=opts["blur"], max_frames=opts["max_frames"], progress=report)
    finally:
        bar.empty()


def process_uploads(files, opts: dict) -> None:
    """Every upload's result: from the session when this upload was processed with these settings."""
    shaping = {k: opts[k] for k in ("detector", "scale", "score_threshold", "min_face", "blur")}
    sections = []
    for i, upload in enumerate(files):
        name = safe_name(upload.name)
        data = upload.getvalue()
        kind = sniff(data)
        if kind not in IMAGE_TYPES and kind not in VIDEO_TYPES:  # sniffed; Matroska (.mkv) sniffs as webm
            st.error(f"{name}: not an image or a video this app can read")
            continue
        video = kind in VIDEO_TYPES
        key = result_key(data, dict(shaping, name=name, kind="video" if video else "image",
                                    **({"max_frames": opts["max_frames"]} if video else {})))
        result = _results().get(key)
        if result is None:
            try:
                if video:
                    result = run_video(data, name, opts)
                else:
                    pipe = get_pipeline(opts["detector"], opts["scale"], opts["score_threshold"], opts["min_face"])
                    result = process_image(pipe, data, name, blur=opts["blur"])
            except MaskwatchError as exc:
                st.error(str(exc))
                continue
            _remember(key, result)
        sections.append(("video" if video else "image", i, result))
    if not sections:
        return
    people = dict.fromkeys(LABELS, 0)
    for kind, i, result in sections:
        st.subheader(result.name)
        if kind == "image":
            show_image(result, i)
            counts = label_counts([result.record])
        else:
            show_video(result, i)
            counts = result.people
        for label, n in counts.items():
            people[label] = people.get(label, 0) + n
    if len(sections) > 1 or sections[0][0] == "image":
        st.subheader(f"People per label, all {len(sections)} uploads" if len(sections) > 1 else "Faces per label")
        show_counts(people, "people" if len(sections) > 1 else "faces")


def live_camera(opts: dict) -> None:
    """The browser's camera through the video pipeline, with boxes, labels and live counts."""
    try:
        import av
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError:
        st.info('The live view needs streamlit-webrtc: pip install "maskwatch[app]"')
        return
    shaping = (opts["detector"], opts["scale"], opts["score_threshold"], opts["min_face"], opts["blur"])
    view = st.session_state.get("live_view")
    if view is None or st.session_state.get("live_settings") != shaping:
        pipe = get_video_pipeline(opts["detector"], opts["scale"], opts["score_threshold"], opts["min_face"])
        view = LiveView(pipe, blur=opts["blur"])
        st.session_state["live_view"], st.session_state["live_settings"] = view, shaping

    def on_frame(frame: "av.VideoFrame") -> "av.VideoFrame":  # streamlit-webrtc's thread, not the script's
        out = av.VideoFrame.from_ndarray(view.process(frame.to_ndarray(format="rgb24")), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    st.caption("Press START and allow the camera. Frames go to this app only; nothing is stored.")
    ctx = webrtc_streamer(key="live-camera", mode=WebRtcMode.SENDRECV, rtc_configuration=RTC_CONFIGURATION,
                          media_stream_constraints={"video": True, "audio": False}, video_frame_callback=on_frame,
                          async_processing=True)

    @st.fragment(run_every=1.0 if ctx.state.playing else None)
    def live_counts() -> None:
        c = st.session_state["live_view"].counts()
        in_view = sum(c["in_view"].values())
        st.markdown(f"**Live:** {c['frames']} frames processed ({c['fps']:.1f} frames/s), "
                    f"{in_view} face(s) in view, {c['unique_tracks']} people seen")
        if not c["frames"]:
            return
        cols = st.columns(len(c["people"]))
        for col, (label, n) in zip(cols, c["people"].items(), strict=True):
            col.metric(f"people {label}", n, help=f"in view now: {c['in_view'].get(label, 0)}")

    live_counts()
    if st.button("Reset counts", key="live-reset"):
        st.session_state.pop("live_view", None)
        st.rerun()


def main() -> None:
    st.set_page_config(page_title="maskwatch", page_icon=":mask:", layout="wide")
    st.title("maskwatch")
    st.caption("Find every face and tell whether it wears a mask: "
               + " / ".join(f"**{label}**" for label in LABELS))
    opts = sidebar()
    try:
        get_pipeline(opts["detector"], opts["scale"], opts["score_threshold"], opts["min_face"])
    except MaskwatchError as exc:
        st.error(f"Could not load the models: {exc}")
        st.stop()
    # only the open tab runs (a tab switch reruns the page; results come from the session)
    photos, live, snapshot = st.tabs(["Photos and video", "Live camera", "Snapshot"], key="mode", on_change="rerun")
    if photos.open:
        with photos:
            files = st.file_uploader("Upload photos or a short video", type=UPLOAD_SUFFIXES,
                                     accept_multiple_files=True)
            if files:
                process_uploads(files, opts)
    if live.open:
        with live:
            live_camera(opts)
    if snapshot.open:
        with snapshot:
            shot = st.camera_input("Take a photo with your camera")
            if shot is not None:
                process_uploads([shot], opts)


main()
