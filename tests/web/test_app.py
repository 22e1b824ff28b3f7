"""The Streamlit page without a browser (Streamlit's AppTest): upload -> annotated image, table, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the app extra (streamlit) is not installed")
from streamlit.testing.v1 import AppTest  # noqa: E402

import maskwatch.web  # noqa: E402
from clips import CLIP_FRAMES, THREE_WAYS_PEOPLE  # noqa: E402
from maskwatch.imageio import encode_image  # noqa: E402

APP = str(Path(maskwatch.web.__file__).parent / "app.py")


@pytest.fixture
def app(shared_models):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_renders_with_sidebar(app):
    assert app.title[0].value == "maskwatch"
    assert [t.label for t in app.tabs] == ["Photos and video", "Live camera", "Snapshot"]
    assert app.sidebar.selectbox[0].value == "rfb"  # the single-pass default
    assert [s.value for s in app.sidebar.select_slider] == ["auto", "auto"]  # scale, threshold: measured defaults
    assert len(app.file_uploader) == 1 and app.file_uploader[0].accept_multiple_files


def test_sidebar_threshold_reaches_the_pipeline(app, astronaut):
    app.sidebar.selectbox[0].set_value("yunet").run()
    app.sidebar.select_slider[1].set_value(0.95).run()  # above the astronaut's face score (about 0.85)
    app.file_uploader[0].set_value(("a.jpg", encode_image(astronaut), "image/jpeg")).run()
    assert not app.exception, app.exception
    assert sum(int(m.value) for m in app.metric) == 0
    app.sidebar.select_slider[1].set_value("auto").run()  # back to the measured default
    assert sum(int(m.value) for m in app.metric) == 1


def test_upload_photo_shows_image_table_and_counts(app):
    from pathlib import Path

    app.file_uploader[0].set_value(("three_ways.jpg", Path("examples/three_ways.jpg").read_bytes(), "image/jpeg")).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("image")) == 1
    table = app.dataframe[0].value
    assert len(table) == 3
    assert list(table.columns) == ["label", "confidence", "width", "height", "det_score", "x1", "y1", "x2", "y2"]
    counts = {m.label: int(m.value) for m in app.metric}
    assert counts == {"with_mask": 1, "without_mask": 1, "mask_worn_incorrectly": 1}
    assert {b.label for b in app.get("download_button")} >= {"Annotated image (JPEG)", "Result (JSON)"}


def test_multiple_uploads_and_a_bad_one(app, astronaut):
    app.sidebar.selectbox[0].set_value("yunet").run()  # maskwatch's detector sees a face in the mirrored badge
    app.file_uploader[0].set_value([
        ("a.jpg", encode_image(astronaut), "image/jpeg"),
        ("b.png", encode_image(astronaut[:, ::-1].copy(), ".png"), "image/png"),
        ("broken.jpg", b"this is not a photo", "image/jpeg"),
    ]).run()
    assert not app.exception, app.exception
    assert "broken.jpg" in app.error[0].value
    assert len(app.dataframe) == 2
    assert sum(int(m.value) for m in app.metric) == 2


def _people(app) -> dict[str, int]:
    return {m.label.removeprefix("people "): int(m.value) for m in app.metric if m.label.startswith("people ")}


def test_upload_video_counts_tracked_people_with_watch_downloads(app, three_ways_clip):
    app.file_uploader[0].set_value(("three_ways.mp4", three_ways_clip.read_bytes(), "video/mp4")).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("video")) == 1
    assert any(f"{CLIP_FRAMES} frames at 12.0 fps" in c.value for c in app.caption)
    assert _people(app) == THREE_WAYS_PEOPLE  # people (tracks), not face-frames
    assert any("**3 people**" in m.value for m in app.markdown)
    labels = {b.label for b in app.get("download_button")}
    assert {"Result (JSON lines, as watch --jsonl)"} <= labels
    assert any(label.startswith("Annotated video (MP4") for label in labels)


def test_reruns_reuse_the_result_and_new_settings_process_again(app, three_ways_clip, monkeypatch):
    import maskwatch.web.media as media

    calls = []
    real = media.process_video

    def counting(*args, **kwargs):
        calls.append(kwargs.get("blur"))
        return real(*args, **kwargs)

    monkeypatch.setattr(media, "process_video", counting)  # app.py imports it from media on every run
    app.sidebar.number_input[1].set_value(10)  # max frames: a shorter run
    app.file_uploader[0].set_value(("three_ways.mp4", three_ways_clip.read_bytes(), "video/mp4")).run()
    assert not app.exception, app.exception
    first = [c.value for c in app.caption if "processed in" in c.value]
    assert calls == [False] and first and "first 10 of" in first[0]
    app.run()  # a rerun, as a download click with on_click="rerun" or any widget would cause
    app.run()
    assert calls == [False]
    assert [c.value for c in app.caption if "processed in" in c.value] == first  # the same result, not a new run
    app.sidebar.checkbox[0].check().run()  # blur: a new result
    assert calls == [False, True]
    app.sidebar.checkbox[0].uncheck().run()  # back: the first result again
    assert calls == [False, True]
    assert [c.value for c in app.caption if "processed in" in c.value] == first
