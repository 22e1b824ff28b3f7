"""The plain engine: one machine, photos decoded and detected in a few threads, results in input order.

With ``workers=1`` a photo is read, decoded and detected after the other in the calling thread (the
one-at-a-time loop, ONNX Runtime on all cores). With more, each worker thread owns a `Pipeline`
whose ONNX Runtime sessions run on ``threads_per_worker`` intra-op threads, and the caller writes
the results (annotated images, JSON lines) while the workers decode and detect the next photos.
ONNX Runtime and OpenCV release the GIL, so the threads run side by side. The results are the
same faces, in the same order, as one at a time (`benchmarks/bench_batch.py` checks both).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import MaskwatchError
from ..faces import Faces
from ..imageio import STDERR_LOCK, decode_image, display_name
from ..onnxmodel import session_threads
from ..pipeline import Pipeline
from ..writers import error_record
from .sources import Source, read_bytes

#: ``(source, problem)``: what `maskwatch.batch.expand_inputs` lists; ``problem`` is set for an input
#: with nothing to read, which becomes an error result.
Item = tuple[Source, "str | None"]
PipelineFactory = Callable[[], Pipeline]

#: ONNX Runtime intra-op threads per worker of the overlapped engine: one, so that the workers, not
#: one session's thread pool, share the cores. benchmarks/bench_batch.py on an idle 2-core machine,
#: 2 workers x 1 thread: 1.32x the photos/s of one at a time (ONNX Runtime on both cores), 1.29x with
#: annotated images (docs/scale.md).
THREADS_PER_WORKER = 1


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Result:
    """What an engine yields per input, in input order.

    ``record`` is the JSON line (`maskwatch.Faces.to_dict`, or `maskwatch.writers.error_record`);
    the plain engine also hands over the decoded ``image`` and its ``faces`` (for the annotated
    image), the Ray engine only the record.
    """

    source: str
    record: dict[str, Any]
    image: np.ndarray | None = None
    faces: Faces | None = None

    @property
    def error(self) -> str | None:
        return self.record.get("error")


def failure_message(source: Source, exc: BaseException) -> str:
    """The one-line error of an input: the exception's text, led by the file's name."""
    shown = display_name(source)
    text = display_name(str(exc))
    return text if text.startswith(shown) else f"{shown}: {text}"


def detect_one(pipe: Pipeline | None, source: Source, problem: str | None = None,
               data: bytes | None = None) -> Result:
    """One input through ``pipe``: read (unless ``data`` is given), decode, detect. A bad input
    becomes an error result (`MaskwatchError`, `OSError`); nothing else is caught."""
    name = str(source)
    try:
        if problem:
            raise MaskwatchError(problem)
        if data is None:
            data = read_bytes(source)
        image = decode_image(data, name=name, max_pixels=pipe.max_pixels)
        del data
        faces = pipe.detect(image, source=name)
    except (MaskwatchError, OSError) as exc:
        return Result(name, error_record(name, failure_message(source, exc)))
    return Result(name, faces.to_dict(), image, faces)


class LocalEngine:
    """Detects a list of inputs on this machine; `run` yields one `Result` per input, in order.

    Args:
        make_pipeline: builds one `Pipeline` (called once per worker, in the calling thread).
        workers: decoding + detection threads (default: the cores of this machine); 1: one photo
            after the other in the calling thread.
        threads_per_worker: ONNX Runtime intra-op threads of each worker's pipeline (with
            ``workers > 1``; one at a time uses ONNX Runtime's default, all cores).
        ahead: how many inputs may be decoded and detected before the caller takes their result
            (default: 2 per worker); bounds the decoded images held in memory.
    """

    def __init__(self, make_pipeline: PipelineFactory, workers: int | None = None,
                 threads_per_worker: int = THREADS_PER_WORKER, ahead: int | None = None):
        self.make_pipeline = make_pipeline
        self.workers = workers or default_workers()
        if self.workers < 1 or threads_per_worker < 1:
            raise ValueError(f"workers and threads_per_worker must be >= 1, got {workers}, {threads_per_worker}")
        self.threads_per_worker = threads_per_worker
        self.ahead = ahead or 2 * self.workers

    def __enter__(self) -> "LocalEngine":  # nothing to start: the same `with` as `RayEngine`
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def run(self, items: Iterable[Item]) -> Iterator[Result]:
        items = list(items)
        if not any(problem is None for _, problem in items):  # nothing to detect: no models loaded
            yield from (detect_one(None, source, problem) for source, problem in items)
            return
        if self.workers == 1:
            pipe = self.make_pipeline()
            yield from (detect_one(pipe, source, problem) for source, problem in items)
            return
        yield from self._overlapped(items)

    def _overlapped(self, items: list[Item]) -> Iterator[Result]:
        free: queue.SimpleQueue = queue.SimpleQueue()
        with session_threads(self.threads_per_worker):
            for _ in range(min(self.workers, len(items))):
                free.put(self.make_pipeline())

        def work(source: Source, problem: str | None) -> Result:
            pipe = free.get()
            try:
                return detect_one(pipe, source, problem)
            finally:
                free.put(pipe)

        pending: collections.deque = collections.deque()
        with _one_stderr_writer(), ThreadPoolExecutor(self.workers, thread_name_prefix="maskwatch-detect") as pool:
            try:
                for source, problem in items:
                    pending.append(pool.submit(work, source, problem))
                    if len(pending) >= self.ahead:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # the caller stopped early (an error, Ctrl-C): drop what has not started
                for future in pending:
                    future.cancel()


@contextlib.contextmanager
def _one_stderr_writer() -> Iterator[None]:
    """While worker threads catch the C decoders' messages on file descriptor 2 (`maskwatch.imageio`),
    Python's writes to stderr from any thread (tqdm's bar and messages, logging's handlers) take the
    same lock, so that none lands among another photo's decoder messages."""
    from tqdm import tqdm

    previous_tqdm = tqdm.get_lock()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.lock for h in handlers]
    tqdm.set_lock(STDERR_LOCK)
    for handler in handlers:
        handler.lock = STDERR_LOCK
    try:
        yield
    finally:
        tqdm.set_lock(previous_tqdm)
        for handler, lock in zip(handlers, previous):
            handler.lock = lock
