"""Parquet results: the Arrow schema of a JSON line, its round trip, the folder writer and resuming it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskwatch.faces import Faces
from maskwatch.writers import error_record, keep_jsonl

pa = pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow (the `ray` extra)")
pq = pytest.importorskip("pyarrow.parquet", reason="Parquet output needs pyarrow (the `ray` extra)")

from maskwatch.writers import (  # noqa: E402
    ParquetWriter,
    parquet_files,
    parquet_schema,
    record_from_row,
    records_to_table,
    resume_parquet,
)

BOXES = np.array([[10, 20, 50, 70], [100.25, 5, 130, 44.75]], np.float32)
PROBS = np.array([[0.9, 0.05, 0.05], [0.1, 0.7, 0.2]], np.float32)
LANDMARKS = np.arange(20, dtype=np.float32).reshape(2, 5, 2)

RECORDS = {
    "boxes only": Faces(BOXES, np.float32([0.9, 0.6]), image_size=(640, 480), source="a.jpg").to_dict(),
    "with classes": Faces(BOXES, np.float32([0.9, 0.6]), probs=PROBS, image_size=(640, 480), source="b.jpg").to_dict(),
    "everything": Faces(BOXES, np.float32([0.9, 0.6]), probs=PROBS, landmarks=LANDMARKS, track_id=[3, 7],
                        image_size=(8, 9), source="c.jpg").to_dict(),
    "no faces": Faces.empty(image_size=(1, 1), source="d.jpg").to_dict(),
    "error": error_record("e.jpg", "e.jpg: truncated image file"),
    "odd name": Faces.empty(image_size=(2, 2), source="caf\\xe9\n.jpg").to_dict(),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_a_record_survives_arrow_unchanged(name):
    record = RECORDS[name]
    table = records_to_table([record])
    assert table.schema == parquet_schema()
    back = record_from_row(table.to_pylist()[0])
    assert back == record
    assert json.dumps(back) == json.dumps(record)  # the same JSON line, key order included


def test_the_faces_are_a_list_of_structs_a_query_can_reach():
    table = records_to_table([RECORDS["with classes"], RECORDS["error"]])
    faces = table.column("faces").to_pylist()
    assert [len(f) for f in faces] == [2, 0]
    assert faces[0][1]["probs"]["without_mask"] == pytest.approx(0.7)
    assert faces[0][1]["label"] == "without_mask" and faces[0][0]["track_id"] is None
    assert table.column("error").to_pylist() == [None, "e.jpg: truncated image file"]


def test_a_face_field_without_a_column_is_refused():
    record = {**RECORDS["boxes only"], "faces": [{"box": [0, 0, 1, 1], "det_score": 0.5, "age": 31}]}
    with pytest.raises(ValueError, match=r"a.jpg: face fields \['age'\] have no column"):
        records_to_table([record])


def test_parquet_folder_is_written_in_whole_files_and_read_by_pyarrow_and_pandas(tmp_path):
    records = list(RECORDS.values())
    with ParquetWriter(tmp_path / "out", rows_per_file=4) as writer:
        for record in records:
            writer.write(record)
    names = [p.name for p in sorted((tmp_path / "out").iterdir())]
    assert names == ["part-00000.parquet", "part-00001.parquet"]
    table = pq.read_table(tmp_path / "out")
    assert table.num_rows == len(records)
    assert [record_from_row(r) for r in table.to_pylist()] == records
    pd = pytest.importorskip("pandas", reason="pandas reads the folder too")
    frame = pd.read_parquet(tmp_path / "out")
    assert list(frame["source"]) == [r["source"] for r in records]


def test_resuming_a_parquet_folder_keeps_the_finished_files_and_drops_a_torn_one(tmp_path):
    out = tmp_path / "out"
    records = list(RECORDS.values())
    with ParquetWriter(out, rows_per_file=2) as writer:
        for record in records[:4]:
            writer.write(record)
    (out / ".part-00002.parquet.tmp").write_bytes(b"PAR1 half a file")  # as a kill leaves it
    assert resume_parquet(out) == {r["source"] for r in records[:4]}
    assert not (out / ".part-00002.parquet.tmp").exists()
    with ParquetWriter(out, rows_per_file=2) as writer:  # the resumed batch numbers on
        for record in records[4:]:
            writer.write(record)
    assert [n.rsplit("/", 1)[-1] for n in parquet_files(out)] == [f"part-0000{i}.parquet" for i in range(3)]
    assert [record_from_row(r) for r in pq.read_table(out).to_pylist()] == records
    ParquetWriter(out, replace=True).close()
    assert parquet_files(out) == [] and resume_parquet(out) == set()


def test_resume_parquet_of_no_folder_is_nothing(tmp_path):
    assert resume_parquet(tmp_path / "none") == set() and parquet_files(tmp_path / "none") == []


def test_keep_jsonl_keeps_only_the_lines_of_the_sources_given(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS.values()))
    keep_jsonl(path, {"b.jpg", "e.jpg"})
    assert [json.loads(line)["source"] for line in path.read_text().splitlines()] == ["b.jpg", "e.jpg"]
