"""Start the web app (Streamlit): upload photos or a short video, see the annotated result, the faces
table, counts and a chart; download the annotated image/video and the JSON.

Runs `streamlit run` on maskwatch/web/app.py, bound to 127.0.0.1 unless --host says otherwise.
Needs the `app` extra: pip install "maskwatch[app]".
"""

from __future__ import annotations

import argparse

HELP = "start the web app (Streamlit)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8501, help="TCP port")
    p.add_argument("--max-upload-mb", type=int, default=20, help="largest accepted upload in MB")
    p.add_argument("--open-browser", action="store_true", help="open a browser tab (default: headless)")


def streamlit_command(args: argparse.Namespace) -> list[str]:
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "web" / "app.py"
    return [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.address", args.host, "--server.port", str(args.port),
            "--server.headless", "false" if args.open_browser else "true",
            "--server.maxUploadSize", str(args.max_upload_mb),
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]


class _Terminated(Exception):
    """SIGTERM arrived (a service manager or `kill` stopping us)."""


def _raise_terminated(signum, frame):
    raise _Terminated


def run(args: argparse.Namespace) -> int:
    """Run Streamlit as a child process and stop it with us: on Ctrl-C (SIGINT) and SIGTERM the
    server is asked to stop (SIGTERM, then SIGKILL after 10 s) and waited for, so no server is left
    behind holding the port."""
    import signal
    import subprocess
    import threading

    from .common import require

    require("app", "app", "streamlit", "pandas")
    print(f"maskwatch app: http://{args.host}:{args.port}", flush=True)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    proc = subprocess.Popen(streamlit_command(args))
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Terminated):
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
