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
    assert app.sidebar.selectbox[0].value == "yunet"
    assert len(app.file_uploader) == 1 and app.file_uploader[0].accept_multiple_files


def test_upload_photo_shows_image_table_and_counts(app, astronaut):
    app.file_uploader[0].set_value(("astronaut.jpg", encode_image(astronaut), "image/jpeg")).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("image")) == 1
    table = app.dataframe[0].value
    assert len(table) == 1 and {"label", "confidence", "x1", "y1", "x2", "y2"} <= set(table.columns)
    counts = {m.label: int(m.value) for m in app.metric}
    assert sum(counts.values()) == 1 and counts[table["label"][0]] == 1
    assert {b.label for b in app.get("download_button")} >= {"Annotated image (JPEG)", "Result (JSON)"}


def test_multiple_uploads_and_a_bad_one(app, astronaut):
    app.file_uploader[0].set_value([
        ("a.jpg", encode_image(astronaut), "image/jpeg"),
        ("b.png", encode_image(astronaut[:, ::-1].copy(), ".png"), "image/png"),
        ("broken.jpg", b"this is not a photo", "image/jpeg"),
    ]).run()
    assert not app.exception, app.exception
    assert "broken.jpg" in app.error[0].value
    assert len(app.dataframe) == 2
    assert sum(int(m.value) for m in app.metric) == 2
