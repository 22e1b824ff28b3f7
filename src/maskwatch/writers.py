"""Writers for results: JSON lines (one per image) and CSV (one row per face), and what a killed batch
left in them (`resume_jsonl`, `resume_csv`)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import IO, Any

from .faces import Faces
from .imageio import display_name
from .labels import LABELS


def error_record(source: str, error: str) -> dict[str, Any]:
    """The JSON line of an input that could not be processed."""
    return {"source": source, "width": None, "height": None, "faces": [], "error": error}


class JsonlWriter:
    """One compact JSON object per line (ASCII: any file name is escaped, never a raw newline)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, record: dict[str, Any] | Faces) -> None:
        if isinstance(record, Faces):
            record = record.to_dict()
        self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.stream.flush()


CSV_COLUMNS = ["source", "face", "x1", "y1", "x2", "y2", "det_score", "label", "confidence",
               *[f"p_{label}" for label in LABELS], "error"]


class CsvWriter:
    """One row per face (and one row with ``error`` for an input that failed).

    Text fields are written with `maskwatch.imageio.display_name`: a file name of any bytes (not
    UTF-8, a newline in it) stays on one line of valid UTF-8, escaped. ``header=False`` appends to a
    file that has one.
    """

    def __init__(self, stream: IO[str], header: bool = True):
        self._stream = stream
        self._writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        if header:
            self._writer.writeheader()

    def write(self, record: dict[str, Any] | Faces) -> None:
        if isinstance(record, Faces):
            record = record.to_dict()
        source = display_name(record["source"])
        if record.get("error"):
            self._writer.writerow({"source": source, "error": display_name(record["error"])})
            self._stream.flush()
            return
        for i, face in enumerate(record["faces"]):
            row = {"source": source, "face": i, "det_score": face["det_score"],
                   "label": face.get("label", ""), "confidence": face.get("confidence", "")}
            row.update(zip(["x1", "y1", "x2", "y2"], face["box"]))
            for label, p in face.get("probs", {}).items():
                row[f"p_{label}"] = p
            self._writer.writerow(row)
        self._stream.flush()


# -- resuming a killed batch ------------------------------------------------------------------------------
def resume_jsonl(path: str | os.PathLike) -> set[str]:
    """The sources of the complete JSON lines of ``path``; a torn last line (the batch was killed
    while writing it) is cut off, so that appending continues the file cleanly."""
    path = Path(path)
    if not path.exists():
        return set()
    done: set[str] = set()
    good_end = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                done.add(json.loads(line)["source"])
            except (ValueError, KeyError, TypeError):
                break
            good_end += len(line)
    if good_end != path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return done


def resume_csv(path: str | os.PathLike, done: set[str]) -> bool:
    """Keep only the rows of ``path`` whose source is in ``done`` (rows of an image whose JSON line
    was never written are that image's partial output); returns whether the file has a header."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return False
    shown = {display_name(s) for s in done}
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    if not text.endswith("\n"):  # a torn last row
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text)))
    partial = path.with_name(f".{path.name}.part")
    with open(partial, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(row for row in rows if row.get("source") in shown)
    os.replace(partial, path)
    return True


# -- Parquet: one row per image, the faces as a list of structs (pyarrow, with the `ray` extra) ----------
#: Rows per Parquet file of `ParquetWriter`: a killed batch redoes at most this many images.
PARQUET_ROWS_PER_FILE = 5000
_FACE_KEYS = ("box", "det_score", "label", "confidence", "probs", "landmarks", "track_id")


def parquet_schema():
    """The Arrow schema of a result row: the JSON line's fields, ``faces`` a list of structs (fields
    a pipeline does not fill, such as ``track_id`` or ``probs`` without classes, are null)."""
    import pyarrow as pa

    face = pa.struct([
        ("box", pa.list_(pa.float64())),
        ("det_score", pa.float64()),
        ("label", pa.string()),
        ("confidence", pa.float64()),
        ("probs", pa.struct([(label, pa.float64()) for label in LABELS])),
        ("landmarks", pa.list_(pa.list_(pa.float64()))),
        ("track_id", pa.int64()),
    ])
    return pa.schema([("source", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
                      ("faces", pa.list_(face)), ("error", pa.string())])


def records_to_table(records: list[dict[str, Any]]):
    """JSON-line records (`Faces.to_dict`, `error_record`) -> a `pyarrow.Table` of `parquet_schema`."""
    import pyarrow as pa

    for record in records:
        for face in record["faces"]:
            unknown = set(face) - set(_FACE_KEYS) or set(face.get("probs") or {}) - set(LABELS)
            if unknown:
                raise ValueError(f"{display_name(record['source'])}: face fields {sorted(unknown)} have no column")
    return pa.Table.from_pylist(records, schema=parquet_schema())


def record_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of `parquet_schema` (``table.to_pylist()``) -> its JSON-line record, equal to the one it
    was made from (null face fields dropped, keys in the JSON line's order)."""
    faces = [{key: face[key] for key in _FACE_KEYS if face.get(key) is not None} for face in row["faces"] or []]
    return {"source": row["source"], "width": row["width"], "height": row["height"], "faces": faces,
            "error": row["error"]}


def _parquet_fs(path: str | os.PathLike):
    """``(pyarrow file system, path in it)``: a URI (``s3://``, ``gs://``, ``file://``) or a local folder."""
    import pyarrow.fs as pafs

    text = os.fspath(path)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), os.path.abspath(text)


def parquet_files(path: str | os.PathLike) -> list[str]:
    """The finished ``part-*.parquet`` files of a `ParquetWriter` folder, in order (none if no folder)."""
    import pyarrow.fs as pafs

    fs, root = _parquet_fs(path)
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    names = [i.path for i in fs.get_file_info(pafs.FileSelector(root)) if i.type == pafs.FileType.File]
    return sorted(n for n in names if n.rsplit("/", 1)[-1].startswith("part-") and n.endswith(".parquet"))


class ParquetWriter:
    """Results as a Parquet dataset: ``DIR/part-00000.parquet``, ... of `parquet_schema`, one row per
    image, a file per ``rows_per_file`` images (written under a hidden name, renamed when complete,
    so a killed batch leaves only whole files). ``DIR`` may be a URI. New files are numbered after the
    ones there (a resumed batch); ``replace=True`` deletes those first. Call `close` (or use ``with``)."""

    def __init__(self, path: str | os.PathLike, rows_per_file: int = PARQUET_ROWS_PER_FILE, replace: bool = False):
        self.fs, self.root = _parquet_fs(path)
        self.fs.create_dir(self.root, recursive=True)
        self.rows_per_file = rows_per_file
        if replace:
            for name in parquet_files(path):
                self.fs.delete_file(name)
        done = parquet_files(path)
        self._next = 1 + max((int(n.rsplit("/", 1)[-1][5:-8]) for n in done), default=-1)
        self._rows: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any] | Faces) -> None:
        self._rows.append(record.to_dict() if isinstance(record, Faces) else record)
        if len(self._rows) >= self.rows_per_file:
            self.flush()

    def flush(self) -> None:
        """Write the rows held so far as one complete file."""
        import pyarrow.parquet as pq

        if not self._rows:
            return
        name = f"part-{self._next:05d}.parquet"
        partial, final = f"{self.root}/.{name}.tmp", f"{self.root}/{name}"
        pq.write_table(records_to_table(self._rows), partial, filesystem=self.fs)
        self.fs.move(partial, final)
        self._next += 1
        self._rows = []

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "ParquetWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def resume_parquet(path: str | os.PathLike) -> set[str]:
    """The sources in the finished files of a `ParquetWriter` folder; a file a killed batch left
    unfinished (its hidden temporary name) is deleted."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs, root = _parquet_fs(path)
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        return set()
    for info in fs.get_file_info(pafs.FileSelector(root)):
        base = info.path.rsplit("/", 1)[-1]
        if base.startswith(".part-") and base.endswith(".tmp"):
            fs.delete_file(info.path)
    done: set[str] = set()
    for name in parquet_files(path):
        done.update(pq.read_table(name, columns=["source"], filesystem=fs).column("source").to_pylist())
    return done


def keep_jsonl(path: str | os.PathLike, sources: set[str]) -> None:
    """Keep only the lines of ``path`` whose source is in ``sources`` (resuming into a JSONL file and a
    Parquet folder: an image is done once it is in both)."""
    path = Path(path)
    if not path.exists():
        return
    partial = path.with_name(f".{path.name}.part")
    with open(path, "rb") as src, open(partial, "wb") as dst:
        dst.writelines(line for line in src if json.loads(line)["source"] in sources)
    os.replace(partial, path)
