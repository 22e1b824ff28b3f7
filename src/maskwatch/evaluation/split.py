"""Which images of a VOC dataset to evaluate on: the classifier's validation side, all, or a list.

The default mask classifier is trained on face crops of ``fmd`` together with three crop sources
(see ``scripts/build_default_model.py``), split by `maskwatch.train.data.group_split` (stratified by
label, grouped by image and duplicate group, seed 0, one fifth for validation). Detection must be
evaluated on the *same* validation images, or the classifier's training faces leak into the score.
`classifier_val_images` recomputes that split from the data alone (no run folder, no torch); the
group split depends only on labels and groups, so prajnasb's YuNet re-cropping is not needed.
It does depend on scikit-learn's ``StratifiedGroupKFold``: 1.8 and 1.9 give the 138 images the shipped
models were trained around, 1.7 another 123 (hence ``scikit-learn>=1.8``; a test checks the list).
"""

from __future__ import annotations

import json
from pathlib import Path

#: The default classifier's sources relative to the folder holding ``fmd`` (scripts/build_default_model.py).
CLASSIFIER_DATA = ("fmd", "crops/fm12k", "crops/maskedface-net")
CLASSIFIER_RECROP = ("crops/prajnasb",)
CLASSIFIER_VAL_FRACTION = 0.2
CLASSIFIER_SEED = 0

SPLITS = ("auto", "val", "train", "all")


def classifier_sources(voc_root: str | Path) -> tuple[list[Path], list[Path]] | None:
    """``(data, recrop)`` folders of the default classifier's training next to ``voc_root``, or ``None``."""
    root = Path(voc_root).resolve()
    base = root.parent
    data = [base / p for p in CLASSIFIER_DATA]
    recrop = [base / p for p in CLASSIFIER_RECROP]
    if root.name != "fmd" or not all(p.is_dir() for p in data + recrop):
        return None
    return data, recrop


def classifier_split_images(voc_root: str | Path, side: str = "val", val_fraction: float = CLASSIFIER_VAL_FRACTION,
                            seed: int = CLASSIFIER_SEED) -> list[Path]:
    """Image paths of ``voc_root`` on one side (``val`` / ``train``) of the classifier's group split.

    Raises:
        FileNotFoundError: the classifier's other sources are not next to ``voc_root``.
    """
    from ..train.data import group_split, scan_folder, scan_voc  # torch-free; needs scikit-learn

    found = classifier_sources(voc_root)
    if found is None:
        raise FileNotFoundError(
            f"{voc_root}: the classifier's split needs its sources next to this folder "
            f"({', '.join(CLASSIFIER_DATA + CLASSIFIER_RECROP)} under {Path(voc_root).resolve().parent}); "
            "use --split all, or --split RUN/split.json of the classifier's training run")
    data, recrop = found
    samples = []
    for root in [*data, *recrop]:
        samples.extend(scan_voc(root) if root.name == "fmd" else scan_folder(root))
    train_idx, val_idx = group_split(samples, val_fraction, seed)
    voc = Path(voc_root).resolve()
    idx = val_idx if side == "val" else train_idx
    return sorted({Path(samples[i].path) for i in idx if Path(samples[i].path).resolve().parent.parent == voc})


def split_file_images(path: str | Path, voc_root: str | Path, side: str = "val") -> list[Path]:
    """Images of ``voc_root`` on one side of a training run's ``split.json``."""
    rows = json.loads(Path(path).read_text())
    if side not in rows:
        raise ValueError(f"{path}: no {side!r} list in the split file (keys: {sorted(rows)})")
    voc = Path(voc_root).resolve()
    return sorted({Path(r["path"]) for r in rows[side] if Path(r["path"]).resolve().parent.parent == voc})


def resolve_split(voc_root: str | Path, split: str = "auto") -> tuple[str, list[Path] | None]:
    """``(description, image paths)`` for ``--split``; ``None`` paths means every image.

    ``auto`` is ``val`` when the classifier's sources sit next to ``voc_root`` (the shared data
    layout the default classifier was trained on), else ``all``. A path is a run's ``split.json``.
    """
    if split == "auto":
        split = "val" if classifier_sources(voc_root) is not None else "all"
    if split == "all":
        return "all", None
    if split in ("val", "train"):
        return f"classifier {split} split (seed {CLASSIFIER_SEED})", classifier_split_images(voc_root, split)
    path = Path(split)
    if not path.is_file():
        raise FileNotFoundError(f"{split}: not a split file; --split takes {', '.join(SPLITS)} or RUN/split.json")
    return f"val side of {path}", split_file_images(path, voc_root)
