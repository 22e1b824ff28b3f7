"""Detection evaluation on Pascal VOC datasets (torch-free): metrics and reports.

>>> from maskwatch.evaluation import evaluate_dataset
>>> from maskwatch.cli.layout import SHARED_LAYOUT
>>> metrics = evaluate_dataset(maskwatch.load(), "../shared/data/fmd", split="val", layout=SHARED_LAYOUT)
>>> metrics["mAP50"], metrics["face_recall"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .detection import confusion, detection_metrics, evaluate_detection, run_pipeline
from .metrics import IOU_THRESHOLDS, SIZE_BUCKETS, average_precision, match_image, pr_curve
from ..datasets import SourceLayout, resolve_split

__all__ = ["IOU_THRESHOLDS", "SIZE_BUCKETS", "average_precision", "confusion",
           "detection_metrics", "evaluate_dataset", "evaluate_detection", "load_split", "match_image", "pr_curve",
           "resolve_split", "run_pipeline"]


def load_split(data: str | Path, split: str = "auto", limit: int | None = None, layout: SourceLayout | None = None):
    """``(description, VocImage list)`` of a VOC dataset's evaluation images (see
    `maskwatch.datasets.resolve_split`; ``layout``: where the classifier's sources lie)."""
    from ..datasets import is_voc_dataset, load_voc

    if not is_voc_dataset(data):
        raise FileNotFoundError(f"{data}: not a Pascal VOC dataset (expected images/ and annotations/ folders)")
    desc, paths = resolve_split(data, split, layout)
    images = load_voc(data)
    if paths is not None:
        wanted = {Path(p).resolve() for p in paths}
        images = [im for im in images if im.path.resolve() in wanted]
        if not images:
            raise ValueError(f"{data}: no annotated image is in the {desc}")
    if limit:
        images = images[:limit]
    return desc, images


def evaluate_dataset(pipe: Any, data: str | Path, split: str = "auto", limit: int | None = None,
                     progress: Callable | None = None, on_error: Callable[[str], None] | None = None,
                     layout: SourceLayout | None = None) -> dict[str, Any]:
    """Evaluate ``pipe`` on a VOC dataset's split; the result also records the split used."""
    desc, images = load_split(data, split, limit, layout)
    m = evaluate_detection(pipe, images, progress, on_error)
    m["split"] = desc
    m["images"] = [im.path.name for im in images]
    return m
