"""Reliability against hostile inputs (issue 17's targets), measured:

1. one ``maskwatch detect`` batch over the seeded hostile corpus of tests/hostile.py (bombs of every
   format, TIFF tricks, mutated photos, trailing data, FIFO, /dev/zero, symlink loops, odd names)
   plus good photos: tracebacks, unanswered inputs, good photos processed, stray stderr lines, peak
   RSS (the child's own VmHWM: wait4's ru_maxrss would include its parent's) and time;
2. ``maskwatch serve`` over the same files: statuses, 500s, server deaths, warm / peak / after RSS;
   then 10,000 requests from 8 concurrent clients (a good photo in four, the rest hostile): errors;
3. SIGKILL during ``maskwatch detect --jsonl --csv -o`` then ``--resume``: every photo exactly once,
   the same JSON lines, CSV rows and annotated images as an uninterrupted run;
4. SIGKILL during ``maskwatch watch -o out.mp4`` (and ``.webm``): frames handed to the writer vs
   frames the file decodes, in seconds of video.

Writes benchmarks/results/fuzz.json.

    MASKWATCH_MODELS=../shared/models python benchmarks/bench_fuzz.py            # the target run
    python benchmarks/bench_fuzz.py --mutations 100 --requests 500               # a quick one

Good photos: the first --good scenes of ../shared/data/fmd/images (read in place), else copies of
scikit-image's astronaut.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hostile  # noqa: E402

EXPECTED_STATUSES = {200, 400, 413, 415}


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), *sys.path]))


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "maskwatch.cli", *args]


def good_photos(data: Path, n: int) -> list[Path]:
    images = sorted((data / "fmd" / "images").glob("*.jpg"))[:n]
    if len(images) == n:
        return images
    import cv2
    from skimage.data import astronaut

    folder = Path(tempfile.mkdtemp(prefix="bench_fuzz_good_"))
    out = []
    for i in range(n):
        path = folder / f"astronaut_{i}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
        out.append(path)
    return out


def run_measured(cmd: list[str]) -> tuple[int, str, float, float]:
    """(exit code, stderr, peak RSS in MiB of this child alone, seconds)."""
    t0 = time.perf_counter()
    rc, err, peak = hostile.run_with_peak_rss(cmd, env=env())
    return rc, err.decode("utf-8", "replace"), peak, time.perf_counter() - t0


# -- 1. the CLI batch ----------------------------------------------------------------------------------
def bench_cli(corpus: hostile.Corpus, tmp: Path) -> dict:
    from maskwatch.imageio import expand_inputs

    jsonl = tmp / "cli.jsonl"
    rc, err, peak, seconds = run_measured(
        cli("detect", *corpus.inputs, "-o", str(tmp / "cli_out"), "--jsonl", str(jsonl), "--csv", str(tmp / "cli.csv"),
            "--quiet"))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    sources = [r["source"] for r in records]
    expected = [str(p) for p, _ in expand_inputs(corpus.inputs).items]
    answered = set(sources)
    unanswered = [g for g in corpus.inputs if g not in answered and not any(s.startswith(g.rstrip("/") + "/")
                                                                             for s in answered)]
    by_source = {r["source"]: r for r in records}
    good_ok = sum(1 for g in corpus.good if g in by_source and by_source[g]["error"] is None)
    stray = [line for line in err.splitlines() if not line.startswith("maskwatch: ")]
    return {
        "inputs_given": len(corpus.inputs), "files_expanded": len(expected), "json_lines": len(records),
        "answers_in_order": sources == expected, "unanswered_inputs": len(unanswered),
        "unanswered_examples": unanswered[:5], "tracebacks": err.count("Traceback"),
        "good_photos": len(corpus.good), "good_photos_processed": good_ok,
        "errors_reported": sum(1 for r in records if r["error"]), "stderr_lines": len(err.splitlines()),
        "stray_stderr_lines": len(stray), "stray_examples": stray[:5], "exit_code": rc,
        "peak_rss_mib": round(peak, 1), "seconds": round(seconds, 1),
    }


# -- 2. the API ----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _send_all(url: str, payloads: list[tuple[str, bytes]], concurrency: int) -> dict:
    import httpx

    statuses: dict[str, int] = {}
    errors: list[str] = []
    it = iter(range(len(payloads)))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            for i in it:
                name, data = payloads[i]
                try:
                    r = await c.post("/v1/detect", files={"file": (name, data, "application/octet-stream")})
                    key = str(r.status_code)
                    if r.status_code not in EXPECTED_STATUSES or (r.status_code != 200 and "error" not in r.json()):
                        errors.append(f"{name}: {r.status_code} {r.text[:100]}")
                except Exception as exc:  # noqa: BLE001 - counted: a connection error is an error
                    key = type(exc).__name__
                    errors.append(f"{name}: {exc!r}"[:200])
                statuses[key] = statuses.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {"statuses": dict(sorted(statuses.items())), "errors": len(errors), "error_examples": errors[:5],
            "seconds": round(time.perf_counter() - t0, 1)}


def bench_api(corpus: hostile.Corpus, photos: list[Path], requests: int, concurrency: int, workers: int) -> dict:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(cli("serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"),
                              env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("maskwatch serve did not start")
            time.sleep(0.2)
        good = [(p.name, p.read_bytes()) for p in photos]
        asyncio.run(_send_all(url, good * 3, 2))  # warm: every worker has run
        time.sleep(1)
        warm = proc_mib(server.pid, "VmRSS")
        hostile_files = list(corpus.files.items())
        fuzz = asyncio.run(_send_all(url, hostile_files + good, 1))
        fuzz["peak_rss_mib"] = round(proc_mib(server.pid, "VmHWM"), 1)
        time.sleep(2)
        fuzz["rss_after_mib"] = round(proc_mib(server.pid, "VmRSS"), 1)
        fuzz["server_alive"] = server.poll() is None
        mix = [good[(i // 4) % len(good)] if i % 4 == 0 else hostile_files[(i - i // 4 - 1) % len(hostile_files)]
               for i in range(requests)]  # a good photo in four
        load = asyncio.run(_send_all(url, mix, concurrency))
        load.update(requests=requests, concurrency=concurrency, server_alive=server.poll() is None,
                    peak_rss_mib=round(proc_mib(server.pid, "VmHWM"), 1))
        time.sleep(2)
        load["rss_after_mib"] = round(proc_mib(server.pid, "VmRSS"), 1)
        load["requests_per_s"] = round(requests / load["seconds"], 1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    fuzz["status_500"] = int(fuzz["statuses"].get("500", 0))
    text = err.decode("utf-8", "replace")
    return {"workers": workers, "warm_rss_mib": round(warm, 1), "fuzz": fuzz, "load": load,
            "server_tracebacks": text.count("Traceback")}


# -- 3. SIGKILL during detect, then --resume -------------------------------------------------------------
def bench_detect_resume(photos: list[Path], tmp: Path, kill_after: int) -> dict:
    def args(name: str) -> list[str]:
        return ["detect", *map(str, photos), "-o", str(tmp / f"{name}_out"), "--jsonl", str(tmp / f"{name}.jsonl"),
                "--csv", str(tmp / f"{name}.csv"), "--quiet"]

    subprocess.run(cli(*args("clean")), env=env(), check=False, capture_output=True)
    proc = subprocess.Popen(cli(*args("killed")), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jl = tmp / "killed.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and (not jl.exists() or jl.read_bytes().count(b"\n") < kill_after):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines_at_kill = jl.read_bytes().count(b"\n")
    refused = subprocess.run(cli(*args("killed")), env=env(), capture_output=True).returncode
    resumed = subprocess.run(cli(*args("killed"), "--resume"), env=env(), capture_output=True)
    clean = [json.loads(x) for x in (tmp / "clean.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in jl.read_text().splitlines()]
    sources = [r["source"] for r in got]

    def rows(name):
        return list(csv.DictReader((tmp / f"{name}.csv").open()))

    def images(name):
        return sorted(p.name for p in (tmp / f"{name}_out").iterdir())

    return {
        "photos": len(photos), "lines_at_kill": lines_at_kill, "rerun_without_resume_exit": refused,
        "resume_exit": resumed.returncode, "every_photo_exactly_once": sorted(sources) == sorted(map(str, photos))
        and len(sources) == len(set(sources)), "jsonl_equals_clean_run": got == clean,
        "csv_equals_clean_run": rows("killed") == rows("clean"),
        "images_equal_clean_run": images("killed") == images("clean"),
        "partial_files_left": len(list((tmp / "killed_out").glob(".*.part"))),
    }


# -- 4. SIGKILL during watch -------------------------------------------------------------------------------
def bench_watch_sigkill(tmp: Path, kill_at_frames: list[int], fps: float = 15.0) -> list[dict]:
    import av
    from skimage.data import astronaut

    from video.conftest import moving_frames, write_video

    clip = write_video(tmp / "clip.mp4", moving_frames(astronaut(), 60) * 10, fps=fps)  # 600 frames, 40 s
    out = []
    for suffix in (".mp4", ".webm"):
        for n in kill_at_frames:
            video, jl = tmp / f"kill_{n}{suffix}", tmp / f"kill_{n}{suffix}.jsonl"
            proc = subprocess.Popen(cli("watch", str(clip), "-o", str(video), "--jsonl", str(jl)), env=env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 300
            while time.time() < deadline and (not jl.exists() or jl.read_bytes().count(b"\n") < n):
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            written = jl.read_bytes().count(b"\n")  # a frame's JSON line is written just before the frame
            try:
                with av.open(str(video)) as container:
                    stream = container.streams.video[0]
                    codec = stream.codec_context.name
                    decoded = sum(1 for _ in container.decode(stream))
            except av.FFmpegError as exc:
                codec, decoded = f"unreadable: {exc}", 0
            out.append({"output": suffix, "codec": codec, "frames_written": written, "frames_decoded": decoded,
                        "seconds_lost": round((written - decoded) / fps, 2),
                        "within_a_second": 0 <= written - decoded <= fps})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutations", type=int, default=600, help="mutated photos in the corpus")
    p.add_argument("--good", type=int, default=10, help="good photos")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--requests", type=int, default=10_000, help="requests of the load run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="maskwatch serve --workers")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--only", default="cli,api,resume,watch", help="comma-separated parts to run")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fuzz.json")
    args = p.parse_args()
    parts = set(args.only.split(","))

    tmp = Path(tempfile.mkdtemp(prefix="bench_fuzz_"))
    photos = good_photos(args.data, args.good)
    corpus = hostile.build_corpus(tmp / "corpus", n_mutations=args.mutations, seed=args.seed)
    for photo in photos:  # read in place, never copied
        corpus.inputs.append(str(photo))
        corpus.good.append(str(photo))
    results: dict = {"meta": {"corpus_inputs": len(corpus.inputs), "hostile_files_for_api": len(corpus.files),
                              "good_photos": [p.name for p in photos], "seed": args.seed, "cpus": os.cpu_count(),
                              "machine": platform.machine(), "python": platform.python_version()}}
    if "cli" in parts:
        results["cli_batch"] = bench_cli(corpus, tmp)
        print(json.dumps(results["cli_batch"], indent=1), flush=True)
    if "api" in parts:
        results["api"] = bench_api(corpus, photos, args.requests, args.concurrency, args.workers)
        print(json.dumps(results["api"], indent=1), flush=True)
    if "resume" in parts:
        photos40 = sorted((args.data / "fmd" / "images").glob("*.jpg"))[:40] or photos
        results["detect_sigkill_resume"] = bench_detect_resume(photos40, tmp, kill_after=len(photos40) // 3)
        print(json.dumps(results["detect_sigkill_resume"], indent=1), flush=True)
    if "watch" in parts:
        results["watch_sigkill"] = bench_watch_sigkill(tmp, [60, 200])
        print(json.dumps(results["watch_sigkill"], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if parts != {"cli", "api", "resume", "watch"} and args.out.exists():  # a partial run updates its parts
        results = {**json.loads(args.out.read_text()), **results}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
