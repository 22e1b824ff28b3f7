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
