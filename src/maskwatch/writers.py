"""Writers for results: JSON lines (one per image) and CSV (one row per face)."""

from __future__ import annotations

import csv
import json
from typing import IO, Any

from .faces import Faces
from .labels import LABELS


def error_record(source: str, error: str) -> dict[str, Any]:
    """The JSON line of an input that could not be processed."""
    return {"source": source, "width": None, "height": None, "faces": [], "error": error}


class JsonlWriter:
    """One compact JSON object per line."""

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
    """One row per face (and one row with ``error`` for an input that failed)."""

    def __init__(self, stream: IO[str]):
        self._writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        self._writer.writeheader()

    def write(self, record: dict[str, Any] | Faces) -> None:
        if isinstance(record, Faces):
            record = record.to_dict()
        if record.get("error"):
            self._writer.writerow({"source": record["source"], "error": record["error"]})
            return
        for i, face in enumerate(record["faces"]):
            row = {"source": record["source"], "face": i, "det_score": face["det_score"],
                   "label": face.get("label", ""), "confidence": face.get("confidence", "")}
            row.update(zip(["x1", "y1", "x2", "y2"], face["box"]))
            for label, p in face.get("probs", {}).items():
                row[f"p_{label}"] = p
            self._writer.writerow(row)
