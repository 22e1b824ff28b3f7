"""Close-up face photos from the classification sets (``crops/<source>/<class>/``): one face each.

They serve two purposes that must never share a file: `benchmarks/bench_detect.py` counts the
*false faces* a detector finds in them (faces beyond the one), and maskwatch's detector can learn
large faces and their surroundings from others. `closeup_files` draws both from one seeded
permutation per folder: the benchmark takes the first ``per_class``, training skips those.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Close-ups per class folder scored by the false-face benchmark (and never trained on).
BENCHMARK_PER_CLASS = 40


def closeup_files(root: str | Path, per_class: int, skip: int = 0, seed: int = 0) -> list[tuple[Path, str]]:
    """``(file, class folder name)`` pairs: ``per_class`` files per ``root/<source>/<class>/`` folder,
    after skipping the first ``skip`` of the folder's seeded permutation."""
    rng = np.random.default_rng(seed)  # one generator over the sorted folders
    out = []
    for folder in sorted(p for p in Path(root).glob("*/*") if p.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.is_file())
        order = rng.permutation(len(files))
        out += [(files[i], folder.name) for i in order[skip:skip + per_class]]
    return out
