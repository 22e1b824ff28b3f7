"""The Ray engine on a local 2-CPU Ray: the plain engine's faces, error rows for bad files, Parquet,
resuming a killed job. One Ray for the whole module (starting one takes seconds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the `ray` extra (pip install 'maskwatch[ray]')")
pytest.importorskip("ray.data", reason="the Ray engine needs Ray Data (pip install 'maskwatch[ray]')")
pq = pytest.importorskip("pyarrow.parquet", reason="Ray Data brings pyarrow")

import maskwatch  # noqa: E402
from maskwatch.batch import LocalEngine, RayEngine, detect_dataset  # noqa: E402
from maskwatch.cli import main  # noqa: E402
from maskwatch.writers import parquet_schema, record_from_row  # noqa: E402

from badinputs import bad_files  # noqa: E402
from hostile import png_bomb  # noqa: E402

N_PHOTOS = 30


@pytest.fixture(scope="module")
def local_ray():
    """A 2-CPU Ray for this module; its address lets a subprocess join it (``--ray-address``)."""
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, object_store_memory=200 * 2**20)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """~30 fmd photos, in place (skip without the shared data)."""
    from conftest import SHARED_DATA

    found = sorted((SHARED_DATA / "fmd" / "images").glob("*.jpg"))[:N_PHOTOS]
    if len(found) < N_PHOTOS:
        pytest.skip(f"shared datasets not found in {SHARED_DATA}")
    return found


@pytest.fixture(scope="module")
def bad(tmp_path_factory, astronaut):
    """Files that must become error rows: missing, empty, truncated, corrupt, text, a decompression bomb."""
    folder = tmp_path_factory.mktemp("bad")
    files = list(bad_files(folder, astronaut).values())
    (folder / "bomb.png").write_bytes(png_bomb(40000, 40000))
    return files + [folder / "bomb.png"]


def test_same_faces_as_the_plain_engine_and_an_error_row_per_bad_file(shared_models, local_ray, photos, bad):
    items = [(p, None) for p in photos[:10]] + [(b, None) for b in bad] + [(p, None) for p in photos[10:]]
    items.append((Path("gone"), "gone: no such file (the pattern matches nothing)"))
    plain = [r.record for r in LocalEngine(maskwatch.load, workers=1).run(items)]
    with RayEngine(maskwatch.load, progress=False) as engine:
        got = [r.record for r in engine.run(items)]
    assert got == plain  # faces, order and error messages
    assert sum(r["error"] is not None for r in got) == len(bad) + 1
    assert sum(len(r["faces"]) for r in got) > N_PHOTOS  # fmd photos are crowds
    assert "above the limit" in got[10 + len(bad) - 1]["error"]  # the bomb, refused before decoding
    assert engine.summary.startswith(f"ray: {len(items)} input(s) in ")


def test_detect_dataset_on_read_binary_files_writes_parquet_pyarrow_reads(shared_models, local_ray, photos, bad,
                                                                            tmp_path):
    paths = [str(p) for p in photos[:8]] + [str(b) for b in bad if b.exists()]
    # reads reserve a quarter CPU and the one actor one CPU: 2 CPUs, and the reads are never starved
    ds = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0.25)
    results = detect_dataset(ds, actors=1)
    results.write_parquet(str(tmp_path / "out"))
    table = pq.read_table(tmp_path / "out")
    assert table.schema.remove_metadata() == parquet_schema()
    rows = {r["source"]: record_from_row(r) for r in table.to_pylist()}
    plain = {r.source: r.record for r in LocalEngine(maskwatch.load, workers=1).run([(Path(p), None) for p in paths])}
    assert rows == plain


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_writes_jsonl_and_parquet_of_the_same_rows(shared_models, local_ray, photos, tmp_path, capsys):
    jsonl, out = tmp_path / "r.jsonl", tmp_path / "parquet"
    folder = tmp_path / "in"
    folder.mkdir()
    for p in photos[:6]:
        (folder / p.name).symlink_to(p)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    rc = main(["detect", str(folder), "--engine", "ray", "--jsonl", str(jsonl), "--parquet", str(out), "--quiet"])
    assert rc == 1  # one input failed
    err = capsys.readouterr().err
    assert "the Ray engine writes no annotated images" in err and "broken.jpg" in err and "ray: 7 input(s)" in err
    records = read_jsonl(jsonl)
    assert [r["source"] for r in records] == sorted(str(p) for p in folder.iterdir())
    assert [record_from_row(r) for r in pq.read_table(out).to_pylist()] == records
    pd = pytest.importorskip("pandas", reason="pandas reads the Parquet folder too")
    assert len(pd.read_parquet(out)) == 7


def test_a_killed_ray_job_resumed_gives_every_photo_exactly_once(shared_models, local_ray, photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for copy in range(8):  # 240 inputs: enough that the job is still running when it is killed
        for p in photos:
            (folder / f"{copy}_{p.name}").symlink_to(p)
    jsonl = tmp_path / "r.jsonl"
    args = ["detect", str(folder), "--engine", "ray", "--jsonl", str(jsonl), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", *args, "--ray-address", local_ray],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and jsonl.read_text().count("\n") >= 20:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = jsonl.read_text().count("\n")
    assert 20 <= written < 8 * N_PHOTOS  # killed halfway
    assert main([*args, "--resume"]) == 0
    sources = [r["source"] for r in read_jsonl(jsonl)]
    assert sources == sorted(str(p) for p in folder.iterdir())  # each once, in order
    plain = {Path(r.source).name: r.record for r in LocalEngine(maskwatch.load, workers=1).run([(p, None) for p in photos])}
    for record in read_jsonl(jsonl):  # each copy has the faces of its photo
        assert record == {**plain[Path(record["source"]).name.split("_", 1)[1]], "source": record["source"]}
