"""The Streamlit page without a browser (Streamlit's AppTest): upload -> annotated image, table, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the app extra (streamlit) is not installed")
from streamlit.testing.v1 import AppTest  # noqa: E402

import maskwatch.web  # noqa: E402
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
    assert len(table) == 3 and {"label", "confidence", "x1", "y1", "x2", "y2"} <= set(table.columns)
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


def test_upload_short_video_shows_annotated_video_and_frames(app, astronaut, tmp_path):
    import cv2

    path = tmp_path / "clip.mp4"
    frame = cv2.cvtColor(cv2.resize(astronaut, (256, 256)), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    for _ in range(6):
        writer.write(frame)
    writer.release()
    app.sidebar.selectbox[0].set_value("yunet").run()  # one face per frame (the ensemble adds a false face in some)
    app.sidebar.number_input[1].set_value(10)  # max frames
    app.file_uploader[0].set_value(("clip.mp4", path.read_bytes(), "video/mp4")).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("video")) == 1
    assert any("6 frames" in c.value for c in app.caption)
    assert {b.label for b in app.get("download_button")} >= {"Annotated video (WebM)", "Result (JSON lines)"}
    assert sum(int(m.value) for m in app.metric) == 6  # one face per frame
