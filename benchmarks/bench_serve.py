"""Throughput and latency of ``POST /v1/detect`` over loopback: ``maskwatch serve`` under N concurrent clients.

Starts ``maskwatch serve`` on 127.0.0.1 (a free port) as a subprocess, sends a bounded number of
requests with a 640x480 photo from ``--concurrency`` async clients, and reports requests/s, latency
percentiles and errors. With several ``--workers`` values it runs one round per value (the server
restarted each time) and the last round uses ``--requests``; the others ``--sweep-requests``.

Writes benchmarks/results/serve.json and the Markdown table between the markers in docs/web.md.

    MASKWATCH_MODELS=../shared/models python benchmarks/bench_serve.py                 # the target run
    python benchmarks/bench_serve.py --workers 1,2,3,4 --opencv-threads 1,0 --requests 2000

The photo: scikit-image's astronaut, centre-cropped to 4:3 and resized to 640x480 (one face), or
--image PATH (read in place, e.g. a ../shared/data/fmd scene), resized to 640x480.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARK_BEGIN = "<!-- bench_serve:begin -->"
MARK_END = "<!-- bench_serve:end -->"


def photo_640x480(path: str | None) -> bytes:
    import cv2

    from maskwatch.imageio import encode_image, read_image

    if path:
        image = read_image(path)
    else:
        from skimage.data import astronaut

        image = astronaut()[64:448]  # 512x384: 4:3
    return encode_image(cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA), ".jpg", 90)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, opencv_threads: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "maskwatch.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--opencv-threads", str(opencv_threads), "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, start_new_session=True)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("server did not become ready within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def load(url: str, photo: bytes, requests: int, concurrency: int, warmup: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    faces: set[int] = set()
    next_i = 0

    async def client(c: httpx.AsyncClient, n: int, record: bool) -> None:
        nonlocal next_i
        while next_i < n:
            next_i += 1
            t0 = time.perf_counter()
            try:
                r = await c.post(url, files={"file": ("photo.jpg", photo, "image/jpeg")})
                ok = r.status_code == 200
                key = None if ok else f"HTTP {r.status_code}"
                if ok and record:
                    faces.add(len(r.json()["faces"]))
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            if record:
                latencies.append(time.perf_counter() - t0)
                if key:
                    errors[key] = errors.get(key, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        await asyncio.gather(*(client(c, warmup, False) for _ in range(concurrency)))
        next_i = 0
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, requests, True) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies), "concurrency": concurrency, "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms": {p: round(float(np.percentile(ms, q)), 1)
                       for p, q in [("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)]},
        "errors": sum(errors.values()), "error_kinds": errors, "faces_per_response": sorted(faces),
    }


def classifier_note(pipeline: dict) -> str:
    """``" + classifier FILE (...)"`` as the server's /v1/models describes it, or nothing."""
    clf = pipeline.get("classifier")
    if not clf:
        return ""
    below = clf.get("below", 1.0)
    return f" + classifier `{clf['file']}`" + (f" on the faces it is < {below:.0%} sure of" if below < 1.0 else "")


def markdown(rounds: list[dict], meta: dict) -> str:
    lines = [
        f"`POST /v1/detect`, {meta['image']}, {meta['concurrency']} concurrent clients over loopback, "
        f"{meta['cpus']} cores of {meta.get('cpu', meta['machine'])}, "
        f"detector `{meta['pipeline']['detector']['name']}` scale {meta['pipeline']['detector']['scale']}"
        f"{classifier_note(meta['pipeline'])}; client and server on the same cores. "
        f"Target: >= 30 requests/s, zero errors over 2,000 requests.",
        "",
        "| workers | OpenCV threads | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        lat = r["latency_ms"]
        lines.append(f"| {r['workers']} | {r['opencv_threads'] or 'default'} | {r['requests']} | "
                     f"{r['requests_per_s']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | {r['errors']} |")
    load = meta["load_average_1m"]
    busy = max(load.values()) > meta["cpus"]
    lines += ["", f"Measured {meta['date']} with `python benchmarks/bench_serve.py {meta['args']}`; 1-minute load "
              f"average {load['before']} before, {load['after']} after"
              + (" (other jobs were using the CPU: the numbers are pessimistic)." if busy else ".")]
    return "\n".join(lines)


def write_markdown(doc: Path, snippet: str) -> None:
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{MARK_BEGIN}\n{snippet}\n{MARK_END}"
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="requests in the final (last) round")
    p.add_argument("--sweep-requests", type=int, default=400, help="requests in each earlier round")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    p.add_argument("--warmup", type=int, default=40, help="unmeasured requests before each round")
    p.add_argument("--workers", default="2", help="comma-separated server --workers values, one round each")
    p.add_argument("--opencv-threads", default="1", help="comma-separated server --opencv-threads values (0: default)")
    p.add_argument("--image", default=None, help="photo to send (default: the astronaut, 640x480)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.json"), help="JSON results")
    p.add_argument("--doc", default=str(ROOT / "docs" / "web.md"), help="Markdown file to update ('' = none)")
    p.add_argument("serve_args", nargs="*", help="extra `maskwatch serve` arguments, after --")
    args = p.parse_args(argv)
    if args.requests > 20000 or args.concurrency > 64:
        p.error("bounded benchmark: at most 20000 requests and 64 clients")

    import httpx

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_detect import cpu_name

    photo = photo_640x480(args.image)
    load_before = round(os.getloadavg()[0], 1)
    combos = [(int(w), int(t)) for t in args.opencv_threads.split(",") for w in args.workers.split(",")]
    rounds = []
    pipeline = None
    for k, (workers, cv_threads) in enumerate(combos):
        last = k == len(combos) - 1
        port = free_port()
        proc = start_server(port, workers, cv_threads, args.serve_args)
        try:
            pipeline = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["pipeline"]
            n = args.requests if last else args.sweep_requests
            result = asyncio.run(load(f"http://127.0.0.1:{port}/v1/detect", photo, n, args.concurrency, args.warmup))
        finally:
            stop_server(proc)
        result.update(workers=workers, opencv_threads=cv_threads)
        rounds.append(result)
        lat = result["latency_ms"]
        print(f"workers={workers} opencv_threads={cv_threads or 'default'}: {result['requests']} requests, "
              f"{result['requests_per_s']} req/s, p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, "
              f"errors {result['errors']} {result['error_kinds'] or ''}", flush=True)

    meta = {
        "image": f"640x480 JPEG ({len(photo) // 1024} KiB, {args.image or 'astronaut'})",
        "concurrency": args.concurrency, "cpus": os.cpu_count(), "cpu": cpu_name(), "machine": platform.machine(),
        "python": platform.python_version(), "pipeline": pipeline, "date": time.strftime("%Y-%m-%d %H:%M"),
        "args": " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average_1m": {"before": load_before, "after": round(os.getloadavg()[0], 1)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rounds": rounds}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    if args.doc:
        write_markdown(Path(args.doc), markdown(rounds, meta))
        print(f"updated {args.doc}")
    final = rounds[-1]
    met = final["requests_per_s"] >= 30 and final["errors"] == 0
    print(f"target (>= 30 req/s, 0 errors): {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
