"""Train / validation splits, torch-free: the group split, and which images of a VOC dataset to evaluate on.

`group_split` is the split of every training run: stratified by label, never splitting a group.

Detection must be evaluated on the validation images of the classifier's own split, or its
training faces leak into the score. `classifier_split_images` recomputes that split from the data
alone (no run folder, no torch), given the classifier's sources as a `SourceLayout`: where they lie
relative to the VOC dataset. The library knows no data layout; the shared one of this project is
`maskwatch.cli.layout.SHARED_LAYOUT`. The group split depends only on labels and groups, so the
re-cropped sources need no face finder here. It does depend on scikit-learn's
``StratifiedGroupKFold``: 1.8 and 1.9 give the 138 fmd images the shipped models were trained
around, 1.7 another 123 (hence ``scikit-learn>=1.8``; a test checks the list).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .folders import Sample, scan_folder, scan_voc
from .voc import duplicate_groups, load_voc

SPLITS = ("auto", "val", "train", "all")


def group_split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val): stratified by label, never splitting a group."""
    from sklearn.model_selection import StratifiedGroupKFold

    if val_fraction <= 0:
        return list(range(len(samples))), []
    n_splits = max(2, round(1 / val_fraction))
    labels = np.array([s.label for s in samples])
    groups = np.array([s.group for s in samples])
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train, val = next(splitter.split(np.zeros(len(samples)), labels, groups))
    return train.tolist(), val.tolist()


def hash_split(images: list, groups: dict[str, str], val_fraction: float, salt: str = "maskwatch") -> tuple[list, list]:
    """``(train, val)`` VOC images by a hash of each photo's duplicate group (``groups``: stem -> group,
    `duplicate_groups`): the same split on every machine and library version, a group never on both
    sides. The detector's split of ilc (`maskwatch.train.rfb`; a test pins it)."""
    train, val = [], []
    for im in images:
        key = groups.get(im.stem, im.stem)
        h = int(hashlib.sha1(f"{salt}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(im)
    return train, val


def hash_split_samples(root: str | Path, val_fraction: float, salt: str = "maskwatch") -> tuple[list[Sample], list[Sample]]:
    """``(train, val)`` face samples of a VOC dataset, split by photo as `hash_split` splits it: a
    classifier trained on them keeps the detector's validation photos out, as the detector does."""
    root = Path(root)
    _, val = hash_split(load_voc(root), duplicate_groups(root), val_fraction, salt)
    held_out = {str(im.path) for im in val}
    samples = scan_voc(root)
    return [s for s in samples if s.path not in held_out], [s for s in samples if s.path in held_out]


@dataclass(frozen=True)
class SourceLayout:
    """A classifier's training sources, as folders relative to the folder that holds the VOC dataset.

    Attributes:
        data: the sources (a VOC dataset among them, by its folder name).
        recrop: folder sources whose faces training re-cuts with a face finder.
        val_fraction, seed: of the classifier's `group_split`.
    """

    data: tuple[str, ...]
    recrop: tuple[str, ...] = ()
    val_fraction: float = 0.2
    seed: int = 0

    def sources(self, voc_root: str | Path) -> tuple[list[Path], list[Path]] | None:
        """``(data, recrop)`` folders next to ``voc_root``, or ``None`` when ``voc_root`` is not one of
        the sources or some source is missing."""
        root = Path(voc_root).resolve()
        base = root.parent
        data = [base / p for p in self.data]
        recrop = [base / p for p in self.recrop]
        if root not in data or not all(p.is_dir() for p in data + recrop):
            return None
        return data, recrop


def layout_split_paths(base: str | Path, layout: SourceLayout, side: str = "val") -> set[Path]:
    """Paths (as scanned under ``base``, the folder that holds them) of every file of ``layout``'s
    sources on one side (``val`` / ``train``) of the classifier's group split: the face photos a
    benchmark may show the classifier (``val``) without scoring what it learnt from."""
    base = Path(base)
    samples = []
    for rel in [*layout.data, *layout.recrop]:
        root = base / rel
        samples.extend(scan_voc(root) if (root / "annotations").is_dir() else scan_folder(root))
    train_idx, val_idx = group_split(samples, layout.val_fraction, layout.seed)
    return {Path(samples[i].path) for i in (val_idx if side == "val" else train_idx)}


def classifier_split_images(voc_root: str | Path, layout: SourceLayout, side: str = "val") -> list[Path]:
    """Image paths of ``voc_root`` on one side (``val`` / ``train``) of the classifier's group split.

    Raises:
        FileNotFoundError: the classifier's other sources are not next to ``voc_root``.
    """
    if layout.sources(voc_root) is None:
        raise FileNotFoundError(
            f"{voc_root}: the classifier's split needs its sources next to this folder "
            f"({', '.join(layout.data + layout.recrop)} under {Path(voc_root).resolve().parent}); "
            "use --split all, or --split RUN/split.json of the classifier's training run")
    voc = Path(voc_root).resolve()
    paths = layout_split_paths(Path(voc_root).parent, layout, side)
    return sorted(p for p in paths if p.resolve().parent.parent == voc)


def split_file_images(path: str | Path, voc_root: str | Path, side: str = "val") -> list[Path]:
    """Images of ``voc_root`` on one side of a training run's ``split.json``: ``{side: [paths]}`` (the
    classifier's and the CenterNet detector's runs) or ``{dataset: {side: [file names]}}`` (the
    single-pass detector's, `maskwatch.train.rfb.loop`; its datasets are named after their folders)."""
    rows = json.loads(Path(path).read_text())
    if side not in rows and rows and all(isinstance(v, dict) for v in rows.values()):
        images = Path(voc_root) / "images"
        mine = [k for k in rows if k == Path(voc_root).resolve().name] or list(rows)
        return sorted({images / name for k in mine for name in rows[k].get(side, []) if (images / name).is_file()})
    if side not in rows:
        raise ValueError(f"{path}: no {side!r} list in the split file (keys: {sorted(rows)})")
    voc = Path(voc_root).resolve()
    return sorted({Path(r["path"] if isinstance(r, dict) else r) for r in rows[side]
                   if Path(r["path"] if isinstance(r, dict) else r).resolve().parent.parent == voc})


def resolve_split(voc_root: str | Path, split: str = "auto", layout: SourceLayout | None = None
                  ) -> tuple[str, list[Path] | None]:
    """``(description, image paths)`` for ``--split``; ``None`` paths means every image.

    ``auto`` is ``val`` when ``layout``'s sources sit next to ``voc_root`` (the data the default
    classifier was trained on), else ``all``. ``val`` / ``train`` need the ``layout``. A path is a
    run's ``split.json``.
    """
    if split == "auto":
        split = "val" if layout is not None and layout.sources(voc_root) is not None else "all"
    if split == "all":
        return "all", None
    if split in ("val", "train"):
        if layout is None:
            raise ValueError(f"split {split!r} is a side of the classifier's split: it needs the classifier's "
                             "source layout (maskwatch.cli.layout.SHARED_LAYOUT for the shared data)")
        return f"classifier {split} split (seed {layout.seed})", classifier_split_images(voc_root, layout, split)
    path = Path(split)
    if not path.is_file():
        raise FileNotFoundError(f"{split}: not a split file; --split takes {', '.join(SPLITS)} or RUN/split.json")
    return f"val side of {path}", split_file_images(path, voc_root)
