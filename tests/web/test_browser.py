"""The web app and the API docs in a real headless Chromium (Playwright driving Debian's chromium).

Starts ``maskwatch app`` (Streamlit) and ``uvicorn`` on free loopback ports; uploads the example
photo and a short clip through the page's file uploader (annotated image and faces table; the
annotated H.264 video playing, tracked people, a download that does not process again); and opens
the live camera view in a Chromium whose camera is a Y4M file of the same clip (boxes drawn, frames
processed, people counted). Screenshots go to $MASKWATCH_SCREENSHOTS (docs/img/) or to a temporary
folder. Skips when chromium or playwright is missing: `apt-get install -y chromium`,
`pip install playwright`; the live view also when streamlit-webrtc is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import maskwatch
from netutil import free_port  # noqa: E402

CHROMIUM = os.environ.get("MASKWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"chromium not found ({CHROMIUM}); "
                                "apt-get install -y chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("streamlit", reason="the app extra (streamlit) is not installed")
from clips import CLIP_FRAMES, THREE_WAYS_PEOPLE  # noqa: E402


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("MASKWATCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:  # one per thread: both browsers come from it
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture(scope="module")
def app_url(shared_models, tmp_path_factory):
    """``maskwatch app`` on a free loopback port, as a subprocess in its own process group."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(maskwatch.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", HOME=str(tmp_path_factory.mktemp("home")))
    log = open(tmp_path_factory.mktemp("applog") / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "app", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_app_upload_photo_shows_annotated_image_and_table(browser, app_url, shots):
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    page.goto(app_url, wait_until="domcontentloaded")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.wait_for(state="attached", timeout=60_000)
    uploader.set_input_files(files=[{"name": "three_ways.jpg", "mimeType": "image/jpeg",
                                     "buffer": Path("examples/three_ways.jpg").read_bytes()}])
    image = page.locator('[data-testid="stImage"] img')
    image.first.wait_for(state="visible", timeout=60_000)
    table = page.locator('[data-testid="stDataFrame"]')
    table.first.wait_for(state="visible", timeout=30_000)
    page.get_by_text("three_ways.jpg: 3 face(s)").wait_for(timeout=10_000)
    page.locator('[data-testid="stMetric"]').nth(2).wait_for(timeout=10_000)  # one per label
    assert page.locator('[data-testid="stMetric"]').count() == 3
    assert page.get_by_role("button", name="Annotated image (JPEG)").is_visible()
    page.wait_for_timeout(1000)  # let the chart finish drawing before the screenshot
    page.screenshot(path=str(shots / "app.png"), full_page=True)
    # the image shown is the annotated one, served by Streamlit
    src = image.first.get_attribute("src")
    assert src and page.request.get(src if src.startswith("http") else app_url + src).ok
    page.close()


def _people(page) -> dict[str, int]:
    """The page's "people <label>" metrics."""
    out = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        if label.startswith("people "):
            out[label.removeprefix("people ")] = int(metric.locator('[data-testid="stMetricValue"]').inner_text())
    return out


#: counts, in the page, every change of the page after which a progress bar is shown: a video
#: being processed shows one from its first frame to its last
_WATCH_PROGRESS = """() => {
    window.progressSeen = 0;
    new MutationObserver(() => {
        if (document.querySelector('[data-testid="stProgress"]')) window.progressSeen++;
    }).observe(document.body, {childList: true, subtree: true});
}"""


def _progress_seen(page, reset: bool = False) -> int:
    return page.evaluate("() => { const n = window.progressSeen; window.progressSeen = 0; return n; }" if reset
                         else "() => window.progressSeen")


def test_app_video_tracks_people_plays_h264_and_downloads_without_processing_again(browser, app_url,
                                                                                   three_ways_clip, shots):
    page = browser.new_page(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
    page.goto(app_url, wait_until="domcontentloaded")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.wait_for(state="attached", timeout=60_000)
    page.evaluate(_WATCH_PROGRESS)
    uploader.set_input_files(files=[{"name": "three_ways.mp4", "mimeType": "video/mp4",
                                     "buffer": three_ways_clip.read_bytes()}])
    jsonl = page.get_by_role("button", name="Result (JSON lines, as watch --jsonl)")
    jsonl.wait_for(timeout=120_000)  # the last element of the video's section
    page.get_by_text("3 people").wait_for(timeout=10_000)
    processed = re.compile(r"processed in [0-9.]+ s")
    caption = page.get_by_text(processed).first.inner_text()
    assert f"{CLIP_FRAMES} frames at 12.0 fps" in caption and "H264" in caption
    assert _people(page) == THREE_WAYS_PEOPLE
    assert _progress_seen(page, reset=True) > 0  # the observer sees a processing run
    # the annotated video is H.264 in MP4 and Chromium plays it
    video = page.locator('[data-testid="stVideo"]').first
    video.evaluate("v => v.play()")
    page.wait_for_function("v => v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0",
                           arg=video.element_handle(), timeout=30_000)
    assert (video.evaluate("v => v.videoWidth"), video.evaluate("v => v.videoHeight")) == (740, 240)
    assert video.evaluate("v => v.error") is None
    video.evaluate("v => { v.pause(); v.currentTime = 0.9; }")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "app-video.png"), full_page=True)
    # downloads: the JSON lines of watch --jsonl, and no processing again
    with page.expect_download() as download:
        jsonl.click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(CLIP_FRAMES))
    assert {f["track_id"] for line in lines for f in json.loads(line)["faces"]} == {1, 2, 3}
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile(r"Annotated video \(MP4")).click()
    assert Path(download.value.path()).read_bytes()[4:8] == b"ftyp"
    page.wait_for_timeout(1500)  # a rerun, had there been one, would have started by now
    assert _progress_seen(page) == 0, "a download processed the video again"
    assert page.get_by_text(processed).first.inner_text() == caption
    # other settings process again; going back to these shows the kept result
    blur = page.get_by_text("Blur faces (privacy)")
    blur.click()
    page.wait_for_function("() => window.progressSeen > 0", timeout=60_000)
    page.wait_for_function("c => !document.body.innerText.includes(c)", arg=caption, timeout=120_000)
    jsonl.wait_for(timeout=120_000)
    page.wait_for_timeout(500)
    _progress_seen(page, reset=True)
    blur.click()
    page.wait_for_timeout(1000)
    jsonl.wait_for(timeout=30_000)
    assert _progress_seen(page) == 0, "going back to the first settings processed the video again"
    page.get_by_text(caption).wait_for(timeout=5_000)
    page.close()


@pytest.fixture(scope="module")
def camera_browser(playwright, three_ways_y4m):
    """A Chromium whose camera plays the three_ways clip (Y4M), permission granted."""
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={three_ways_y4m}"])
    yield b
    b.close()


def test_app_live_camera_draws_boxes_and_counts_people(camera_browser, app_url, shots):
    pytest.importorskip("streamlit_webrtc", reason="the live view needs streamlit-webrtc (the app extra)")
    page = camera_browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Live camera").click()
    component = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
    component.get_by_role("button", name="START").click(timeout=60_000)
    live = re.compile(r"Live: [1-9][0-9]* frames processed")
    page.get_by_text(live).wait_for(timeout=90_000)
    deadline = time.monotonic() + 60
    while _people(page) != THREE_WAYS_PEOPLE and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    # every person tracked under their label (on a busy machine dropped frames may split a track)
    people = _people(page)
    assert set(people) == set(THREE_WAYS_PEOPLE) and all(n >= 1 for n in people.values()), people
    assert re.search(r"[1-9] face\(s\) in view", page.get_by_text(live).inner_text())
    # the processed stream comes back and plays in the page (WebRTC may lower its resolution under load)
    video = component.locator("video").first
    assert video.evaluate("v => v.videoWidth") > 0
    first = int(re.search(r"Live: (\d+)", page.get_by_text(live).inner_text())[1])
    page.wait_for_timeout(2000)
    later = int(re.search(r"Live: (\d+)", page.get_by_text(live).inner_text())[1])
    assert later > first  # still processing, and the counts keep coming
    page.screenshot(path=str(shots / "app-live.png"), full_page=True)
    component.get_by_role("button", name="STOP").click()
    page.close()


def test_api_docs_page(browser, shared_models, shots):
    uvicorn = pytest.importorskip("uvicorn")
    from maskwatch.web.api import Settings, create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(Settings(workers=1)), host="127.0.0.1", port=port,
                                       log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", 30)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/docs")
        page.get_by_text("/v1/detect").first.wait_for(timeout=30_000)
        page.get_by_text("/v1/detect").first.click()  # open it: parameters, the upload field, responses
        page.get_by_text("annotate").first.wait_for(timeout=10_000)
        page.screenshot(path=str(shots / "api-docs.png"), full_page=True)
        page.close()
    finally:
        srv.should_exit = True
        thread.join(10)
