"""The web app and the API docs in a real headless Chromium (Playwright driving Debian's chromium).

Starts ``maskwatch app`` (Streamlit) and ``uvicorn`` on free loopback ports, uploads the example
photo through the page's file uploader, and checks that the annotated image and the faces table
appear. Screenshots go to $MASKWATCH_SCREENSHOTS (the README's docs/img/) or to a temporary folder.
Skips when chromium or playwright is missing: `apt-get install -y chromium`, `pip install playwright`.
"""

from __future__ import annotations

import os
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
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app_url(shared_models, tmp_path_factory):
    """``maskwatch app`` on a free loopback port, as a subprocess in its own process group."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(maskwatch.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", HOME=str(tmp_path_factory.mktemp("home")))
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "app", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_app_upload_photo_shows_annotated_image_and_table(browser, app_url, astronaut, shots):
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
