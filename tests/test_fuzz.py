"""Fuzz: a seeded corpus of ~330 hostile inputs (tests/hostile.py) through one `maskwatch detect` batch
and through the REST API. Nothing may crash, hang, print unattributed noise or go unanswered, and
every good photo must be processed. (benchmarks/bench_fuzz.py is the larger run, with memory.)"""

from __future__ import annotations

import csv
import json
import os
import sys

import pytest

import hostile
from maskwatch.imageio import expand_inputs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, astronaut):
    return hostile.build_corpus(tmp_path_factory.mktemp("fuzz"), n_mutations=250, seed=17, good=[astronaut])


def test_one_detect_batch_answers_every_hostile_input(shared_models, corpus, tmp_path):
    jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    rc, err_bytes, peak_mib = hostile.run_with_peak_rss(
        [sys.executable, "-m", "maskwatch.cli", "detect", *corpus.inputs, "--detector", "yunet",
         "-o", str(tmp_path / "out"), "--jsonl", str(jsonl), "--csv", str(csv_path), "--quiet"], env=env)
    err = err_bytes.decode("utf-8", "replace")
    assert rc == 1, err[-2000:]
    assert "Traceback" not in err
    stray = [line for line in err.splitlines() if not line.startswith("maskwatch: ")]
    assert not stray, stray[:5]  # every decoder message is attributed, on one line
    records = [json.loads(line) for line in jsonl.read_text(encoding="ascii").splitlines()]
    expected = [str(p) for p, _ in expand_inputs(corpus.inputs).items]
    assert [r["source"] for r in records] == expected  # every input answered once, in order
    for given in corpus.inputs:  # ... and every given path is among the answers (itself or a file in it)
        assert any(s == given or s.startswith(given.rstrip("/") + "/") for s in expected), given
    by_source = {r["source"]: r for r in records}
    for good in corpus.good:
        assert by_source[good]["error"] is None, by_source[good]
        assert by_source[good]["faces"], good
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert {r["source"] for r in rows if r["error"]} and all("\n" not in r["source"] for r in rows)
    assert 0 < peak_mib < 1024  # the batch's own peak RSS


def test_the_api_answers_every_hostile_upload(shared_models, corpus):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    pytest.importorskip("httpx", reason="the test extra (httpx) is not installed")
    from fastapi.testclient import TestClient

    from maskwatch.web.api import Settings, create_app

    statuses: dict[int, int] = {}
    with TestClient(create_app(Settings(workers=2))) as client:
        for name, data in corpus.files.items():
            r = client.post("/v1/detect", files={"file": (name, data, "application/octet-stream")})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code in (200, 400, 413, 415), (name, r.status_code, r.text[:200])
            if r.status_code != 200:
                assert set(r.json()) == {"error"}
            elif name.startswith(("good_", "motion_photo", "png_", "noext_photo")):
                assert r.json()["faces"], name
        assert client.get("/healthz").json()["status"] == "ok"
    assert statuses.get(200, 0) >= len([n for n in corpus.files if n.startswith("good_")])
