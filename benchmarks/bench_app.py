"""The web app's video path against ``maskwatch watch`` on the same clip, for one or more versions.

    python benchmarks/bench_app.py [--shared ../shared] [--seconds 12] [--repeat 3]
    python benchmarks/bench_app.py --version "before=/old/checkout/src" --version "after=src"

The clip: bench_watch's test video (640x480, 25 fps, real face photos from ../shared/data/crops that
enter, leave, move and change size, encoded with OpenCV's mp4v), ``--seconds`` long (12 s = 300
frames = the app's default video frame limit, so both process every frame). Per repeat, for each
version in turn (interleaved, so that other work on the machine weighs on all alike):

* ``watch``: ``maskwatch watch CLIP -o out.mp4 --jsonl out.jsonl`` as a subprocess: the wall time of the
  command (Python start and model loading included) and its processing time (``--summary``'s
  ``elapsed``: decoding, inference, encoding).
* ``web function``: `maskwatch.web.media.process_video` on the same bytes in a subprocess, timed there
  with the pipeline already loaded: what the page runs, without Streamlit and the browser.
* ``web page``: the version's app (``streamlit run`` of its web/app.py) in Debian's Chromium through
  Playwright: a fresh page (a new session), the clip set on the uploader, timed until the JSON-lines
  download button shows, i.e. the whole result is on the page; and the processing time the page
  states, where it states one. The first upload of each app also loads the video pipeline; it is
  reported apart and not in the medians.

A version is ``LABEL=SRC``: the ``src`` folder of a checkout, put first on ``PYTHONPATH`` of every
subprocess (default: this checkout). Writes benchmarks/results/app.json (one entry per label) and the
table between the markers in docs/web.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK_BEGIN = "<!-- bench_app:begin -->"
MARK_END = "<!-- bench_app:end -->"
CHROMIUM = os.environ.get("MASKWATCH_CHROMIUM") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def version_env(src: Path) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))


def time_watch(clip: Path, tmp: Path, src: Path) -> dict:
    summary = tmp / "summary.json"
    cmd = [sys.executable, "-m", "maskwatch.cli", "watch", str(clip), "-o", str(tmp / "watch.mp4"),
           "--jsonl", str(tmp / "watch.jsonl"), "--summary", str(summary), "--quiet"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=version_env(src))
    wall = time.perf_counter() - t
    result = json.loads(summary.read_text())["result"]
    return {"wall_s": round(wall, 2), "processing_s": round(result["elapsed"], 2), "frames": result["frames_processed"],
            "unique_tracks": result["compliance"]["unique_tracks"]}


#: run in a subprocess of the version: load the pipeline the app loads for video, then time the web path
_WEB_FUNCTION = """
import json, sys, time
from pathlib import Path
try:
    from maskwatch.video import video_pipeline
    pipe = video_pipeline()
except ImportError:  # before video_pipeline, the app ran the photo pipeline on video
    from maskwatch import load
    pipe = load()
from maskwatch.web.media import process_video
data = Path(sys.argv[1]).read_bytes()
t = time.perf_counter()
result = process_video(pipe, data, "clip.mp4", max_frames=10_000)
print(json.dumps({"wall_s": round(time.perf_counter() - t, 2), "frames": result.frames}))
"""


def time_web_function(clip: Path, src: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _WEB_FUNCTION, str(clip)], check=True, capture_output=True,
                         text=True, env=version_env(src))
    return json.loads(out.stdout.strip().splitlines()[-1])


class App:
    """``streamlit run APP`` on a free loopback port, in its own process group."""

    def __init__(self, app: Path, log: Path, src: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", "127.0.0.1",
             "--server.port", str(self.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.maxUploadSize", "200"], stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env=version_env(src))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):  # noqa: S310 - loopback
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the app did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def time_web_page(browser, url: str, data: bytes, timeout_s: float = 600) -> dict:
    """``wall_s``: upload to the whole result on the page; ``processing_s``: what the page says its
    processing took (``None`` for versions that do not say)."""
    import re

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(url, wait_until="domcontentloaded")
        uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
        uploader.wait_for(state="attached", timeout=90_000)
        page.get_by_text("Upload photos").first.wait_for(timeout=30_000)
        t = time.perf_counter()
        uploader.set_input_files(files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": data}])
        page.get_by_role("button", name=re.compile(r"^Result \(JSON lines")).wait_for(timeout=timeout_s * 1000)
        wall = round(time.perf_counter() - t, 2)
        said = re.search(r"processed in ([0-9.]+) s", page.locator("body").inner_text())
        return {"wall_s": wall, "processing_s": float(said[1]) if said else None}
    finally:
        page.close()


def markdown(results: dict) -> str:
    lines = ["| version | frames | `watch` wall s | `watch` processing s | web function s | web page s "
             "(of it processing) | web page / `watch` wall | web page / `watch` processing |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in results["runs"].items():
        m = r["median"]
        said = m.get("web_page_processing_s")
        lines.append(f"| {label} | {r['frames']} | {m['watch_wall_s']} | {m['watch_processing_s']} | "
                     f"{m['web_function_s']} | {m['web_page_s']} ({said if said else 'not shown'}) | "
                     f"{m['web_page_s'] / m['watch_wall_s']:.2f}x | {m['web_page_s'] / m['watch_processing_s']:.2f}x |")
    meta = next(iter(results["runs"].values()))["meta"]
    firsts = ", ".join(f"{label} {r['first_upload_s']} s" for label, r in results["runs"].items())
    lines += ["", f"Medians of {meta['repeat']} repeats, the versions interleaved; first web upload of each app "
              f"(loading the video pipeline, not in the medians): {firsts}. {meta['date']}, {meta['cpu']} "
              f"({meta['cpus']} cores), 1-minute load average {meta['load_before']} before, {meta['load_after']} "
              f"after; `python benchmarks/bench_app.py {meta['args']}`."]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, table: str) -> None:
    text = path.read_text() if path.is_file() else ""
    block = f"{MARK_BEGIN}\n{table}{MARK_END}"
    if MARK_BEGIN in text and MARK_END in text:
        text = text[: text.index(MARK_BEGIN)] + block + text[text.index(MARK_END) + len(MARK_END):]
    else:
        text += ("\n" if text else "") + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared data folder")
    p.add_argument("--seconds", type=float, default=12.0, help="length of the test clip (25 fps)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved repeats")
    p.add_argument("--version", action="append", default=None, metavar="LABEL=SRC",
                   help="a version to measure: label and its checkout's src folder (repeatable; default: this "
                        "checkout)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "app.json"))
    p.add_argument("--md", default=str(ROOT / "docs" / "web.md"), help="Markdown file with the markers ('' : none)")
    args = p.parse_args(argv)

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_detect import cpu_name
    from bench_watch import build_video
    from playwright.sync_api import sync_playwright

    versions = {}
    for spec in args.version or [f"this checkout={ROOT / 'src'}"]:
        label, _, src = spec.rpartition("=")
        versions[label or spec] = Path(src).resolve()
    os.environ.setdefault("MASKWATCH_MODELS", str(Path(args.shared) / "models"))
    load_before = round(os.getloadavg()[0], 1)
    rows: dict[str, list] = {label: [] for label in versions}
    first: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip.mp4"
        build_video(Path(args.shared), clip, args.seconds)
        data = clip.read_bytes()
        apps = {}
        try:
            for i, (label, src) in enumerate(versions.items()):
                apps[label] = App(src / "maskwatch" / "web" / "app.py", tmp / f"app{i}.log", src)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
                for label, app in apps.items():
                    first[label] = time_web_page(browser, app.url, data)["wall_s"]
                    print(f"{label}: first web upload (loads the video pipeline): {first[label]} s", file=sys.stderr)
                for i in range(args.repeat):
                    for label, src in versions.items():
                        row = {"watch": time_watch(clip, tmp, src), "web_function": time_web_function(clip, src),
                               "web_page": time_web_page(browser, apps[label].url, data)}
                        rows[label].append(row)
                        print(f"{label}, repeat {i + 1}: {json.dumps(row)}", file=sys.stderr)
                browser.close()
        finally:
            for app in apps.values():
                app.stop()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(), "repeat": args.repeat,
            "seconds": args.seconds, "load_before": load_before, "load_after": round(os.getloadavg()[0], 1),
            "versions": list(versions), "args": " ".join(argv if argv is not None else sys.argv[1:])}
    runs = {}
    for label, rs in rows.items():
        said = [r["web_page"]["processing_s"] for r in rs]
        med = {
            "watch_wall_s": round(statistics.median(r["watch"]["wall_s"] for r in rs), 2),
            "watch_processing_s": round(statistics.median(r["watch"]["processing_s"] for r in rs), 2),
            "web_function_s": round(statistics.median(r["web_function"]["wall_s"] for r in rs), 2),
            "web_page_s": round(statistics.median(r["web_page"]["wall_s"] for r in rs), 2),
            "web_page_processing_s": round(statistics.median(said), 2) if all(said) else None,
        }
        runs[label] = {"label": label, "frames": rs[0]["watch"]["frames"], "first_upload_s": first[label],
                       "median": med, "repeats": rs, "meta": meta}
    out = Path(args.out)
    results = {"runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print(table)
    if args.md:
        write_markdown(Path(args.md), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
