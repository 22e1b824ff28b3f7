"""Checkpoints and early stopping, shared by both trainers (the classifier's `engine`, the detector's `loop`).

A checkpoint holds everything resume and export need: the model's and the optimiser's state (and a
scheduler's, where there is one), the epoch, the run's config, the model's spec (`ModelSpec` as JSON:
labels, input size, mean/std, ...), the history and the early-stopping state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..spec import ModelSpec


def checkpoint_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int, config: dict[str, Any],
                     spec: ModelSpec, history: list[dict[str, Any]], scheduler: Any = None, **extra: Any) -> dict[str, Any]:
    """The checkpoint dict: ``model``, ``optimizer``, (``scheduler``), ``epoch``, ``config``, ``spec``,
    ``history`` and ``extra`` (the early-stopping state)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "config": config,
             "spec": spec.to_json(), "history": history, **extra}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return state


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    torch.save(state, path)


def load_state(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict, tensors on ``device``."""
    return torch.load(path, map_location=device, weights_only=False)


class EarlyStopping:
    """Stops when the validation value has not improved for ``patience`` epochs.

    Args:
        patience: epochs without improvement that stop the run.
        best: the best value so far (resume); default: none yet.
        mode: ``"min"`` (a loss) or ``"max"`` (mAP).
        stale: epochs without improvement so far (resume).
    """

    def __init__(self, patience: int, best: float | None = None, mode: str = "min", stale: int = 0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        self.patience, self.mode, self.stale = patience, mode, stale
        self.best = (math.inf if mode == "min" else -math.inf) if best is None else best

    @property
    def stopped(self) -> bool:
        return self.stale >= self.patience

    def step(self, value: float) -> tuple[bool, bool]:
        """Record an epoch; returns (improved, stop). A NaN (no validation data) never stops the run."""
        if math.isnan(value):
            return False, False
        if value < self.best if self.mode == "min" else value > self.best:
            self.best, self.stale = value, 0
            return True, False
        self.stale += 1
        return False, self.stopped


def start_run(output: str | Path, config: dict[str, Any], threads: int = 0, seed: int = 0) -> Path:
    """The run folder (created) with its ``config.json``; torch's threads and the seeds set."""
    import json
    import random

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    random.seed(seed)
    torch.manual_seed(seed)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    return out
