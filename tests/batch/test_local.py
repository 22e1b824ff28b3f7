"""The plain engine: one result per input in input order, the same as one at a time, bounded look-ahead."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from maskwatch.batch import LocalEngine, detect_one
from maskwatch.faces import Faces
from maskwatch.imageio import DEFAULT_MAX_PIXELS

from badinputs import bad_files, write_jpeg


class FakePipeline:
    """Records which thread ran each image and how many ran at once; a face per image, sized by it."""

    max_pixels = DEFAULT_MAX_PIXELS

    def __init__(self, log: list, delay: float = 0.0):
        self.log, self.delay = log, delay

    def detect(self, image, source=None):
        self.log.append((source, threading.get_ident()))
        time.sleep(self.delay)
        h, w = image.shape[:2]
        return Faces(np.float32([[0, 0, w / 2, h / 2]]), np.float32([0.5]), image_size=(w, h), source=source)


@pytest.fixture
def photos(tmp_path, astronaut):
    """Eight photos of different sizes (so each has its own result) and the bad files, interleaved."""
    folder = tmp_path / "photos"
    folder.mkdir()
    good = [write_jpeg(folder / f"p{i}.jpg", astronaut[: 200 + 20 * i, : 300 - 10 * i]) for i in range(8)]
    bad = list(bad_files(tmp_path / "bad", astronaut).values())
    items = [(p, None) for p in good[:4]] + [(b, None) for b in bad] + [(p, None) for p in good[4:]]
    return items + [(folder / "nothing", f"{folder / 'nothing'}: is a directory of no images")]


def records(engine, items):
    return [r.record for r in engine.run(items)]


@pytest.mark.parametrize("workers, threads", [(2, 1), (3, 1), (2, 2)])
def test_overlapped_gives_the_one_at_a_time_results_in_order(shared_models, photos, workers, threads):
    import maskwatch

    one = records(LocalEngine(maskwatch.load, workers=1), photos)
    assert records(LocalEngine(maskwatch.load, workers=workers, threads_per_worker=threads), photos) == one
    assert [r["source"] for r in one] == [str(p) for p, _ in photos]
    errors = [r["error"] for r in one]
    assert sum(e is not None for e in errors) == 6 and errors[:4] == [None] * 4
    assert "does_not_exist.jpg: no such file" in errors[4]
    assert errors[-1] == f"{photos[-1][0]}: is a directory of no images"
    assert all(r["faces"] for r in one if r["error"] is None)  # the astronaut is found in every crop


def test_workers_run_side_by_side_and_one_worker_runs_in_the_calling_thread(photos):
    log: list = []
    good = [item for item in photos if item[1] is None][:4]
    list(LocalEngine(lambda: FakePipeline(log), workers=1).run(good))
    assert {tid for _, tid in log if _ is not None} == {threading.get_ident()}
    log.clear()
    list(LocalEngine(lambda: FakePipeline(log, delay=0.05), workers=2).run([i for i in photos if i[1] is None]))
    assert threading.get_ident() not in {tid for _, tid in log} and len({tid for _, tid in log}) == 2


def test_the_engine_runs_at_most_ahead_inputs_before_their_results_are_taken(photos):
    log: list = []
    good = [(p, None) for p, problem in photos if problem is None and p.exists() and p.stat().st_size > 1000]
    results = LocalEngine(lambda: FakePipeline(log), workers=2, ahead=3).run(good * 4)
    first = next(results)
    time.sleep(0.3)  # time enough to detect everything, were the engine unbounded
    assert first.faces is not None and first.image is not None
    assert 3 <= len(log) <= 3 + 2  # the queued ones, and at most one more per worker
    assert len(list(results)) == len(good) * 4 - 1


def test_nothing_to_detect_loads_no_model(photos):
    def refuse():
        raise AssertionError("no pipeline should be built")

    (result,) = LocalEngine(refuse, workers=2).run([photos[-1]])
    assert result.error == f"{photos[-1][0]}: is a directory of no images"


def test_detect_one_turns_bytes_into_a_result_and_bad_bytes_into_an_error():
    log: list = []
    import cv2

    ok, jpg = cv2.imencode(".jpg", np.zeros((40, 60, 3), np.uint8))
    result = detect_one(FakePipeline(log), "mem.jpg", data=jpg.tobytes())
    assert result.record["width"] == 60 and result.record["faces"][0]["box"] == [0.0, 0.0, 30.0, 20.0]
    bad = detect_one(FakePipeline(log), "mem.jpg", data=b"not an image")
    assert bad.image is None and bad.error.startswith("mem.jpg: ")


def test_session_threads_sets_the_intra_op_threads_of_sessions_made_inside(shared_models):
    from maskwatch.onnxmodel import onnx_session, session_threads
    from maskwatch.registry import resolve

    path = resolve("maskwatch-rfb")
    with session_threads(1):
        inside = onnx_session(path)
    assert inside.get_session_options().intra_op_num_threads == 1
    assert onnx_session(path, threads=2).get_session_options().intra_op_num_threads == 2
