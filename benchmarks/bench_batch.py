"""Batch throughput: photos per second of the plain engine one photo at a time, the plain engine
overlapped, and the Ray engine on this machine, on the same 500 photos; Ray's start-up; the cluster
size for 10 million photos an hour, on paper, from the measured per-actor throughput.

    MASKWATCH_MODELS=../shared/models python benchmarks/bench_batch.py --shared ../shared

The photos are the first 250 of fmd and the first 250 of ilc (file name order; ``--photos``
changes the count). Every engine runs the default pipeline (`maskwatch.load()`) and hands each
result to the writing loop the way ``maskwatch detect --no-annotate --jsonl`` does (a JSON line
into a file); the plain engines are also timed with annotated images written (``detect``'s
default; the Ray engine writes none). Engines alternate round by round (``--rounds``), so
background load falls on all of them alike; the table gives the median over rounds and the best
round. For each run:

* ``photos_per_s``: photos / seconds from the moment the last pipeline was loaded (each plain
  worker's, each Ray actor's: the factory notes the time) to the last result: the rate with the
  start-up excluded, models loading (plain) or the actor pool starting (Ray);
* ``wall_photos_per_s``: photos / seconds of the whole run, model loading and actor start included;
* ``first_result_s``: seconds to the first result (pipeline or actor pool start-up);
* ``cpu_ms_per_photo``: CPU time of this process (all its threads) per photo: what the photos cost
  whatever else runs on the machine (for Ray only the driver's share; the actors are other processes).

Ray's own start-up (``ray.init`` of a local 2-CPU Ray, measured in a fresh process) is reported
separately. ``identical``: every engine's JSON lines equal the one-at-a-time ones. ``--sweep`` adds
the configurations the defaults were chosen from (workers x ONNX Runtime threads; Ray actors x CPUs
per actor, reading in the actors or in a ``read_binary_files`` stage).

Writes benchmarks/results/batch.json (``--json``; ``--keep-previous`` keeps the runs already there) and
the table in docs/scale.md (``--render``: the table alone, from the JSON file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

PHOTOS_PER_HOUR = 10_000_000


def photos(shared: Path, n: int) -> list[Path]:
    half = n // 2
    fmd = sorted((shared / "data" / "fmd" / "images").glob("*.jpg"))[:half]
    ilc = sorted((shared / "data" / "ilc" / "images").glob("*.jpg"))[: n - half]
    return fmd + ilc


class ReadyClock:
    """A pipeline factory (picklable, so Ray actors run it) that notes when each pipeline is loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self):
        import maskwatch

        pipe = maskwatch.load()
        with open(self.path, "a") as fh:
            fh.write(f"{time.time()}\n")
        return pipe

    def reset(self) -> None:
        self.path.write_text("")

    def last(self) -> float:
        return max(float(line) for line in self.path.read_text().split())


def timed(results: Iterable, write: Callable[[Any], None], clock: ReadyClock) -> dict[str, Any]:
    """Consume an engine's results through ``write``; the times and the records."""
    clock.reset()
    cpu0 = time.process_time()
    t0 = time.time()
    first = None
    records = []
    for result in results:
        if first is None:
            first = time.time()
        write(result)
        records.append(result.record)
    end = time.time()
    cpu = time.process_time() - cpu0
    n = len(records)
    ready = clock.last()
    return {"photos_per_s": n / (end - ready), "wall_photos_per_s": n / (end - t0), "startup_s": ready - t0,
            "first_result_s": first - t0, "wall_s": end - t0, "cpu_ms_per_photo": 1000 * cpu / n, "records": records}


def ray_init_seconds(cpus: int) -> float:
    """``ray.init`` of a local Ray in a fresh process (what ``--engine ray`` pays before any work)."""
    code = ("import time, logging; t=time.perf_counter(); import ray; "
            f"ray.init(num_cpus={cpus}, include_dashboard=False, logging_level=logging.ERROR); "
            "print(time.perf_counter()-t); ray.shutdown()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def read_stage_dataset(paths: list[Path], read_cpus: float):
    """A dataset whose bytes come from a ``read_binary_files`` stage (tasks of ``read_cpus`` CPUs)."""
    import ray

    return ray.data.read_binary_files([str(p) for p in paths], include_paths=True, num_cpus=read_cpus,
                                      override_num_blocks=max(1, len(paths) // 32))


def markdown(result: dict[str, Any]) -> str:
    """The table of docs/scale.md: every run in the JSON file, the latest last."""
    runs = result.get("previous_runs", []) + [{k: v for k, v in result.items() if k != "previous_runs"}]
    out = []
    for i, run in enumerate(runs, 1):
        load = ", ".join(f"{x:.1f}" for x in run["load_before"])
        busy = " (other work running)" if run["load_before"][0] > run["cores"] else ""
        out.append(f"Run {i} of {len(runs)}: {run['photos']} photos, {run['rounds']} rounds, {run['cpu']}, "
                   f"{run['cores']} cores, load average before {load}{busy}.\n")
        out.append("| engine | photos/s, start-up excluded: median (best) | photos/s, whole run | start-up (s) | "
                   "CPU ms per photo (this process) | identical to one at a time |")
        out.append("|---|---|---|---|---|---|")
        for name, row in run["engines"].items():
            cpu = row.get("cpu_ms_per_photo_median")
            out.append(f"| {name} | {row['photos_per_s_median']:.1f} ({row['photos_per_s_best']:.1f}) | "
                       f"{row['wall_photos_per_s_median']:.1f} | {row['startup_s_median']:.2f} | "
                       f"{'' if cpu is None else f'{cpu:.1f}'} | {'yes' if row['identical_to_one_at_a_time'] else 'NO'} |")
        r = run["overlapped_vs_one_at_a_time"]
        line = (f"\nOverlapped / one at a time: {r['median']:.2f}x median, {r['best']:.2f}x best rounds (target 1.5x); "
                f"with annotated images {run['overlapped_vs_one_at_a_time_annotated']['median']:.2f}x.")
        line += ceiling(run)
        if "ray_vs_overlapped" in run:
            q, c = run["ray_vs_overlapped"], run["cluster_for_10M_photos_per_hour"]
            init = ", ".join(f"{x:.1f}" for x in run["ray_init_s"])
            line += (f" Ray / overlapped: {q['median']:.2f}x median, {q['best']:.2f}x best (target 0.8x). `ray.init` of a "
                     f"local Ray: {init} s. 10 million photos an hour ({c['photos_per_s_needed']:.0f}/s) at "
                     f"{c['per_actor_photos_per_s']:.1f} photos/s per one-CPU actor: {c['actors_1_cpu']} actors, "
                     f"{c['nodes_16_cpu']} nodes of 16 CPUs.")
        out.append(line + "\n")
    return "\n".join(out)


def ceiling(run: dict[str, Any]) -> str:
    """What the cores allow: the overlapped engine's CPU time per photo spread over every core, as a
    ratio to one at a time (ONNX Runtime already runs on all cores there, so this bounds the gain)."""
    engines = run["engines"]
    one = engines.get("one at a time")
    over = next((row for name, row in engines.items() if name.startswith("overlapped") and "annotated" not in name), None)
    if not one or not over or not over.get("cpu_ms_per_photo_median"):
        return ""
    best = run["cores"] * 1000 / over["cpu_ms_per_photo_median"]
    return (f" At {over['cpu_ms_per_photo_median']:.1f} ms of CPU per photo, {run['cores']} fully busy cores could do "
            f"{best:.0f} photos/s: {best / one['photos_per_s_median']:.2f}x one at a time at most.")


def write_markdown(path: Path, text: str) -> None:
    start, end = "<!-- bench_batch:start -->", "<!-- bench_batch:end -->"
    doc = path.read_text()
    if start not in doc:
        return
    head, rest = doc.split(start, 1)
    path.write_text(head + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--photos", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray (default: this machine's)")
    p.add_argument("--sweep", action="store_true", help="also the configurations the defaults were chosen from")
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "batch.json")
    p.add_argument("--keep-previous", action="store_true",
                   help="keep the runs already in --json (under 'previous_runs'): repeated runs on a shared machine")
    p.add_argument("--markdown", type=Path, default=ROOT / "docs" / "scale.md", help="the table goes here")
    p.add_argument("--render", action="store_true", help="only write the table of the runs already in --json")
    args = p.parse_args()
    if args.render:
        write_markdown(args.markdown, markdown(json.loads(args.json.read_text())))
        return
    os.environ.setdefault("MASKWATCH_MODELS", str(args.shared / "models"))

    from bench_detect import cpu_name
    from maskwatch.annotate import annotate
    from maskwatch.batch import LocalEngine, default_workers
    from maskwatch.imageio import write_image
    from maskwatch.writers import JsonlWriter

    paths = photos(args.shared, args.photos)
    items = [(path, None) for path in paths]
    cores = default_workers()
    cpus = args.cpus or cores
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    clock = ReadyClock(tmp / "ready.txt")
    jsonl = open(tmp / "out.jsonl", "w")
    writer = JsonlWriter(jsonl)

    def write_line(result) -> None:
        writer.write(result.record)

    def write_annotated(result) -> None:
        if result.image is not None:
            write_image(tmp / "annotated.jpg", annotate(result.image, result.faces))
        writer.write(result.record)

    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "one at a time": lambda: timed(LocalEngine(clock, workers=1).run(items), write_line, clock),
        f"overlapped ({cores} workers x 1 thread)": lambda: timed(LocalEngine(clock).run(items), write_line, clock),
        "one at a time, annotated images": lambda: timed(LocalEngine(clock, workers=1).run(items), write_annotated, clock),
        f"overlapped ({cores} workers x 1 thread), annotated images":
            lambda: timed(LocalEngine(clock).run(items), write_annotated, clock),
    }
    if args.sweep:
        for workers, threads in ((1, 1), (2, 2), (3, 1), (4, 1)):
            runs[f"overlapped ({workers} workers x {threads} thread(s))"] = (
                lambda w=workers, t=threads: timed(LocalEngine(clock, workers=w, threads_per_worker=t).run(items),
                                                   write_line, clock))
    result: dict[str, Any] = {
        "cpu": cpu_name(), "cores": cores, "photos": len(paths), "rounds": args.rounds, "python": platform.python_version(),
        "load_before": os.getloadavg(),
    }
    engine = None
    if not args.no_ray:
        import ray

        from maskwatch.batch import RayEngine, detect_dataset
        from maskwatch.writers import record_from_row
        result["ray_version"] = ray.__version__
        result["ray_init_s"] = [ray_init_seconds(cpus) for _ in range(2)]
        engine = RayEngine(clock, num_cpus=cpus, progress=False).__enter__()
        result["ray_cluster"] = described = engine.describe()
        runs[f"ray ({engine.describe()})"] = lambda: timed(engine.run(items), write_line, clock)
        if args.sweep:
            for actors, per in ((1, 2.0), (1, 1.0), (2, 0.5)):
                runs[f"ray ({actors} actor(s) x {per:g} CPU)"] = (
                    lambda a=actors, c=per: timed(RayEngine(clock, actors=a, cpus_per_actor=c,
                                                            progress=False).run(items), write_line, clock))

            class Rows:  # read_binary_files stage + actors: what a Ray pipeline user would write
                def __init__(self, ds):
                    self.ds = ds

                def __iter__(self):
                    from maskwatch.batch import Result
                    for batch in self.ds.iter_batches(batch_format="pyarrow", batch_size=None):
                        for row in batch.to_pylist():
                            yield Result(row["source"], record_from_row(row))

            def read_stage(read_cpus: float, actors: int, per: float) -> dict[str, Any]:
                ds = detect_dataset(read_stage_dataset(paths, read_cpus), pipeline=clock, actors=actors,
                                    cpus_per_actor=per)
                ds.context.execution_options.preserve_order = True
                ds.context.enable_progress_bars = False
                return timed(Rows(ds), write_line, clock)

            runs["ray, read_binary_files (0.25 CPU) + 2 actors x 0.875 CPU"] = lambda: read_stage(0.25, 2, 0.875)
            runs["ray, read_binary_files (0.25 CPU) + 1 actor x 1 CPU"] = lambda: read_stage(0.25, 1, 1.0)

    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    reference = None
    identical: dict[str, bool] = {}
    for rnd in range(args.rounds):
        for name, run in runs.items():
            out = run()
            records = out.pop("records")
            if reference is None:
                reference = records
            if "read_binary_files" in name:  # its sources are the paths as Ray lists them: compare the faces
                same = [r["faces"] for r in records] == [r["faces"] for r in reference]
            else:
                same = records == reference
            identical[name] = identical.get(name, True) and same
            measured[name].append(out)
            print(json.dumps({"round": rnd, "engine": name, **{k: round(v, 3) for k, v in out.items()},
                              "identical": same}), flush=True)
    if engine is not None:
        engine.__exit__(None, None, None)
    jsonl.close()

    table = {}
    for name, outs in measured.items():
        rates = [o["photos_per_s"] for o in outs]
        table[name] = {"photos_per_s_median": statistics.median(rates), "photos_per_s_best": max(rates),
                       "photos_per_s_rounds": rates,
                       "wall_photos_per_s_median": statistics.median(o["wall_photos_per_s"] for o in outs),
                       "startup_s_median": statistics.median(o["startup_s"] for o in outs),
                       "cpu_ms_per_photo_median": statistics.median(o["cpu_ms_per_photo"] for o in outs),
                       "first_result_s_median": statistics.median(o["first_result_s"] for o in outs),
                       "identical_to_one_at_a_time": identical[name]}
    result["engines"] = table
    names = list(runs)
    seq, ovl = table[names[0]], table[names[1]]
    result["overlapped_vs_one_at_a_time"] = {
        "median": ovl["photos_per_s_median"] / seq["photos_per_s_median"],
        "best": ovl["photos_per_s_best"] / seq["photos_per_s_best"], "target": 1.5}
    result["overlapped_vs_one_at_a_time_annotated"] = {
        "median": table[names[3]]["photos_per_s_median"] / table[names[2]]["photos_per_s_median"],
        "best": table[names[3]]["photos_per_s_best"] / table[names[2]]["photos_per_s_best"]}
    if engine is not None:
        ray_row = table[next(n for n in names if n.startswith("ray ("))]
        result["ray_vs_overlapped"] = {"median": ray_row["photos_per_s_median"] / ovl["photos_per_s_median"],
                                       "best": ray_row["photos_per_s_best"] / ovl["photos_per_s_best"], "target": 0.8}
        actors = int(described.split(" actor")[0].rsplit(" ", 1)[-1])
        per_actor = ray_row["photos_per_s_median"] / actors
        need = PHOTOS_PER_HOUR / 3600
        result["cluster_for_10M_photos_per_hour"] = {
            "photos_per_s_needed": need, "per_actor_photos_per_s": per_actor,
            "actors_1_cpu": math.ceil(need / per_actor),
            "nodes_16_cpu": math.ceil(math.ceil(need / per_actor) / 15),  # one CPU per node left to Ray and reading
            "note": "the per-actor rate measured here, scaled linearly; one CPU per 16-CPU node is left for "
                    "reading and Ray itself",
        }
    result["load_after"] = os.getloadavg()
    if args.keep_previous and args.json.exists():
        before = json.loads(args.json.read_text())
        result["previous_runs"] = before.pop("previous_runs", []) + [before]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(args.markdown, markdown(result))
    print(json.dumps({k: v for k, v in result.items() if k != "engines"}, indent=1))
    for name, row in table.items():
        print(f"{name:70s} {row['photos_per_s_median']:7.1f} photos/s (best {row['photos_per_s_best']:.1f})  "
              f"start-up {row['startup_s_median']:.2f} s  identical {row['identical_to_one_at_a_time']}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
