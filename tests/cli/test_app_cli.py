"""`maskwatch app` stops its Streamlit server with it: a real process tree, real signals."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netutil import free_port

pytest.importorskip("streamlit", reason="maskwatch app needs the app extra (streamlit)")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_app_stops_its_streamlit_server(sig, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "app", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, HOME=str(tmp_path)),
                            # as from a terminal: a background job of a script inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not listening(port):
            assert proc.poll() is None, "maskwatch app exited before its server listened"
            assert time.monotonic() < deadline, "streamlit did not listen within 90 s"
            time.sleep(0.3)
        (server,) = children(proc.pid)
        assert alive(server)
        proc.send_signal(sig)  # to maskwatch alone, as `kill` or a service manager does
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 5
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(server), "the streamlit server outlived maskwatch app"
        assert not listening(port)
    finally:
        if proc.poll() is None:
            proc.kill()
