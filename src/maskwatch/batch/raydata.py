"""The Ray engine: maskwatch's pipeline over a Ray Data dataset (the ``ray`` extra).

`detect_dataset` maps a dataset of ``path`` (and, optionally, ``bytes``) rows to one result row per
image with `Dataset.map_batches`: a pool of stateful actors (`Detect`), each loading the models
once, ONNX Runtime's intra-op threads matched to the actor's CPUs. Rows carry only paths (and the
actor reads the file, locally or from object storage) unless the dataset already has the bytes
(``ray.data.read_binary_files(..., include_paths=True)``); a file that cannot be read or decoded
becomes an error row, never a failed job. The result rows follow `maskwatch.writers.parquet_schema`
(``source, width, height, faces, error``; `maskwatch.writers.record_from_row` turns one into its
JSON line).

`RayEngine` is what ``maskwatch detect --engine ray`` runs: it joins a cluster (``address``) or
starts a local Ray for the command, and yields the results in input order like `LocalEngine`.

On one machine every CPU goes to an actor: the rows come from the driver's list of paths
(`ray.data.from_items`), so no read task needs a CPU. A read stage that does (``read_binary_files``
reserves one CPU per read task by default) must be left CPUs: two one-CPU actors on a two-CPU machine
hold both, the reads never start and the job waits forever (see docs/scale.md).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any, Iterable, Iterator

from ..errors import MaskwatchError
from ..onnxmodel import session_threads
from ..pipeline import load
from ..writers import error_record, record_from_row, records_to_table
from .local import Item, PipelineFactory, Result, detect_one, failure_message

#: Images per call of an actor: enough to amortise a call (~100 ms of work), few enough that a slow
#: batch does not hold back the ordered stream (chosen, not swept).
BATCH_SIZE = 8
#: Rows per block of the driver's list of paths (`RayEngine`); the dataset has at most
#: `MAX_BLOCKS` blocks whatever the number of photos.
ROWS_PER_BLOCK = 32
MAX_BLOCKS = 4096


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MaskwatchError("the Ray engine needs Ray Data: pip install 'maskwatch[ray]'") from None
    return ray


class Detect:
    """The stateful actor of `detect_dataset`: a `Pipeline` loaded once, called on batches of rows
    (``path``, optional ``bytes`` and ``error``) as `pyarrow.Table`, returning result rows."""

    def __init__(self, make_pipeline: PipelineFactory, threads: int = 1):
        import cv2

        cv2.setNumThreads(threads)  # OpenCV's resizes and YuNet: the actor's CPUs, not the node's
        with session_threads(threads):
            self.pipe = make_pipeline()

    def __call__(self, batch) -> Any:
        names = batch.column("path").to_pylist()
        data = batch.column("bytes").to_pylist() if "bytes" in batch.column_names else [None] * len(names)
        problems = batch.column("error").to_pylist() if "error" in batch.column_names else [None] * len(names)
        records = []
        for name, raw, problem in zip(names, data, problems):
            try:
                records.append(detect_one(self.pipe, name, problem, raw).record)
            except Exception as exc:  # noqa: BLE001 - one bad image is one error row, never a failed job
                records.append(error_record(name, failure_message(name, exc)))
        return records_to_table(records)


def detect_dataset(ds: Any, *, pipeline: PipelineFactory | None = None, actors: int | None = None,
                   cpus_per_actor: float = 1.0, batch_size: int = BATCH_SIZE, **load_kwargs: Any) -> Any:
    """Detect faces in every image of a Ray dataset; returns the dataset of results (lazy).

    Args:
        ds: a `ray.data.Dataset` with a ``path`` column (local path or URI, read by the actors) and,
            optionally, ``bytes`` (the encoded image, e.g. from ``ray.data.read_binary_files(paths,
            include_paths=True)``) and ``error`` (a known problem: the row becomes an error row).
        pipeline: a picklable function returning the `Pipeline` (default: ``maskwatch.load(**load_kwargs)``).
        actors: size of the actor pool (default: the cluster's CPUs / ``cpus_per_actor``). Leave
            CPUs for ``ds``'s own tasks if it has any (see the module docstring).
        cpus_per_actor: CPUs each actor reserves; its ONNX Runtime and OpenCV use that many threads.
        batch_size: rows per actor call.
        load_kwargs: `maskwatch.load` arguments (``detector``, ``classifier``, ``min_face``, ...).

    Returns:
        a `ray.data.Dataset` of rows ``source, width, height, faces, error``
        (`maskwatch.writers.parquet_schema`): ``.write_parquet(...)``, ``.iter_rows()``, ...
    """
    ray = _ray()
    make = pipeline or functools.partial(load, **load_kwargs)
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))
    threads = max(1, round(cpus_per_actor))
    # the factory rides on a subclass (pickled with the function) rather than as constructor
    # arguments, which Ray would keep in the object store for restarts and warn about
    actor = type("Detect", (Detect,), {"__init__": lambda self: Detect.__init__(self, make, threads)})
    return ds.map_batches(actor, batch_format="pyarrow", batch_size=batch_size,
                          compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus_per_actor)


class RayEngine:
    """`maskwatch detect --engine ray`: a Ray Data job over a list of inputs, results in input order.

    Use as a context manager: it connects to ``address`` (an existing cluster, ``"auto"`` for the
    one this machine is part of) or, without one, starts a local Ray of ``num_cpus`` CPUs (default:
    all) and stops it at the end; a Ray already initialised in this process is used as it is.

    Args:
        make_pipeline: a picklable function returning the `Pipeline` (run once per actor).
        address: the cluster to join (``ray://host:10001`` or ``host:6379``), or ``None``.
        num_cpus: CPUs of a local Ray.
        actors, cpus_per_actor, batch_size: see `detect_dataset`.
        progress: Ray Data's progress bars.
    """

    def __init__(self, make_pipeline: PipelineFactory, address: str | None = None, num_cpus: int | None = None,
                 actors: int | None = None, cpus_per_actor: float = 1.0, batch_size: int = BATCH_SIZE,
                 progress: bool = True):
        self.make_pipeline = make_pipeline
        self.address, self.num_cpus = address, num_cpus
        self.actors, self.cpus_per_actor, self.batch_size = actors, cpus_per_actor, batch_size
        self.progress = progress
        self.startup_s: float | None = None  #: seconds to start or join Ray
        self.summary: str | None = None  #: one line on the last `run`: photos, seconds, cluster
        self._started = False

    def __enter__(self) -> "RayEngine":
        ray = _ray()
        t0 = time.perf_counter()
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                         include_dashboard=False, logging_level=logging.ERROR, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise MaskwatchError(f"could not start {where}: {str(exc).splitlines()[0]}") from None
            self._started = True
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        self.startup_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._started:
            _ray().shutdown()
            self._started = False

    def describe(self) -> str:
        """The cluster in words: CPUs, actors."""
        ray = _ray()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        actors = self.actors or max(1, int(cpus // self.cpus_per_actor))
        return f"{cpus} CPU(s), {actors} actor(s) x {self.cpus_per_actor:g} CPU"

    def run(self, items: Iterable[Item]) -> Iterator[Result]:
        ray = _ray()
        items = list(items)
        if not items:
            return
        if any(problem is None for _, problem in items):
            self.make_pipeline()  # a bad flag or a missing model fails here, once, not in every actor
        t0 = time.perf_counter()
        described = self.describe()
        rows = [{"path": str(source), "error": problem} for source, problem in items]
        # blocks of ROWS_PER_BLOCK rows, but at least a few per actor so that a small job uses them all
        per_actor = 4 * (self.actors or max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_actor)))
        blocks = max(1, min(MAX_BLOCKS, len(rows), max(math.ceil(len(rows) / ROWS_PER_BLOCK), per_actor)))
        ds = detect_dataset(ray.data.from_items(rows, override_num_blocks=blocks), pipeline=self.make_pipeline,
                            actors=self.actors, cpus_per_actor=self.cpus_per_actor, batch_size=self.batch_size)
        ds.context.execution_options.preserve_order = True  # results in input order, like the plain engine
        ds.context.enable_progress_bars = self.progress
        expected = iter(rows)
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in batch.to_pylist():
                want = next(expected)["path"]
                if row["source"] != want:  # pragma: no cover - would break the order contract
                    raise RuntimeError(f"Ray returned {row['source']!r} where {want!r} was expected")
                yield Result(row["source"], record_from_row(row))
        seconds = time.perf_counter() - t0
        started = f"; Ray started in {self.startup_s:.1f} s" if self._started else ""
        self.summary = (f"ray: {len(rows)} input(s) in {seconds:.1f} s ({len(rows) / seconds:.1f}/s, actor start-up "
                        f"included) on {described}{started}")
