"""`maskwatch detect`'s batch flags: --workers (the same lines as one at a time), --parquet, resuming
into --jsonl and --parquet, --engine ray's errors (the Ray runs themselves: tests/batch/test_raydata.py)."""

from __future__ import annotations

import json
import sys

import pytest

from maskwatch.cli import main

from badinputs import bad_files, write_jpeg


@pytest.fixture
def folder(tmp_path, astronaut):
    """Six crops of the astronaut (one face each, different sizes) and the bad files."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        write_jpeg(folder / f"p{i}.jpg", astronaut[: 220 + 30 * i, 40 * i // 2: 400])
    bad_files(folder / "bad", astronaut)
    return folder


def lines(path):
    return path.read_text().splitlines()


def test_every_worker_count_writes_the_one_at_a_time_lines_and_images(shared_models, folder, tmp_path):
    outs = {}
    for workers in ("1", "2", "3"):
        jsonl, out = tmp_path / f"w{workers}.jsonl", tmp_path / f"img{workers}"
        assert main(["detect", str(folder), "--workers", workers, "-o", str(out), "--jsonl", str(jsonl),
                     "--quiet"]) == 1  # the bad files
        outs[workers] = (lines(jsonl), sorted(p.name for p in out.iterdir()))
    assert outs["2"] == outs["1"] == outs["3"]
    assert len(outs["1"][0]) == 8 and len(outs["1"][1]) == 6  # two bad files found by content (the empty and text ones are skipped), six photos


def test_parquet_holds_the_json_lines_and_is_not_replaced_without_overwrite(shared_models, folder, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet", reason="--parquet needs pyarrow (the `ray` extra)")
    from maskwatch.writers import record_from_row

    jsonl, out = tmp_path / "r.jsonl", tmp_path / "parquet"
    args = ["detect", str(folder), "--no-annotate", "--jsonl", str(jsonl), "--parquet", str(out), "--quiet"]
    assert main(args) == 1
    records = [json.loads(line) for line in lines(jsonl)]
    assert [record_from_row(r) for r in pq.read_table(out).to_pylist()] == records
    assert main([*args[:3], "--parquet", str(out), "--quiet"]) == 2
    assert "has results; add --resume" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 1
    assert [p.name for p in out.iterdir()] == ["part-00000.parquet"]


def test_resume_into_jsonl_and_parquet_redoes_what_is_not_in_both(shared_models, folder, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet", reason="--parquet needs pyarrow (the `ray` extra)")
    jsonl, out = tmp_path / "r.jsonl", tmp_path / "parquet"
    args = ["detect", str(folder), "--no-annotate", "--jsonl", str(jsonl), "--parquet", str(out), "--quiet"]
    assert main(args) == 1
    full = lines(jsonl)
    # killed before the Parquet file was finished: JSON lines of three inputs, a torn fourth, a hidden part file
    jsonl.write_text("\n".join(full[:3]) + "\n" + full[3][:20])
    part = out / "part-00000.parquet"
    part.rename(out / ".part-00000.parquet.tmp")
    assert main(args + ["--resume"]) == 1
    assert "resuming: 0 of 8 input(s) already in" in capsys.readouterr().err
    assert lines(jsonl) == full  # each input once
    assert [r["source"] for r in pq.read_table(out).to_pylist()] == [json.loads(line)["source"] for line in full]
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    # resuming a finished batch does nothing more
    assert main(args + ["--resume"]) == 0
    assert lines(jsonl) == full and pq.read_table(out).num_rows == 8


def test_resume_from_parquet_alone(shared_models, folder, tmp_path, capsys):
    pytest.importorskip("pyarrow.parquet", reason="--parquet needs pyarrow (the `ray` extra)")
    out = tmp_path / "parquet"
    args = ["detect", str(folder), "--no-annotate", "--parquet", str(out), "--quiet"]
    assert main(args) == 1
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "resuming: 8 of 8 input(s) already in" in capsys.readouterr().err


def test_ray_flags_without_the_ray_engine_or_without_ray(folder, monkeypatch, capsys):
    assert main(["detect", str(folder), "--ray-address", "auto"]) == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the `ray` extra were not installed
    assert main(["detect", str(folder), "--engine", "ray", "--no-annotate", "--quiet"]) == 2
    assert 'detect --engine ray needs ray, which is not installed: pip install "maskwatch[ray]"' in capsys.readouterr().err
