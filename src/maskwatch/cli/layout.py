"""The shared data layout of this project (``../shared/data``): where the default classifier's
training sources lie next to the fmd detection set (scripts/build_default_model.py trains on them).

It lives at the CLI level, not in the library: ``maskwatch eval --split auto`` uses it to evaluate
on the validation side of the default classifier's split when --data is the shared fmd folder;
the benchmarks, scripts and tests import it from here.
"""

from __future__ import annotations

from ..datasets import SourceLayout

SHARED_LAYOUT = SourceLayout(data=("fmd", "crops/fm12k", "crops/maskedface-net"), recrop=("crops/prajnasb",),
                             val_fraction=0.2, seed=0)
