"""Classifier evaluation: metrics (scikit-learn), JSON and PNG plots for people to look at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.report import plot_matrix
from ..labels import LABELS


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, labels: tuple[str, ...] = LABELS) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, confusion matrix, ROC-AUC and AP per class."""
    from sklearn.metrics import (accuracy_score, average_precision_score, classification_report,
                                 confusion_matrix, roc_auc_score)

    y_true = np.asarray(y_true)
    ids = list(range(len(labels)))
    y_pred = probs.argmax(1) if len(probs) else np.zeros(0, int)
    report = classification_report(y_true, y_pred, labels=ids, target_names=list(labels), output_dict=True,
                                   zero_division=0)
    text = classification_report(y_true, y_pred, labels=ids, target_names=list(labels), zero_division=0, digits=4)
    per_class = {}
    for i, name in enumerate(labels):
        pos = y_true == i
        entry = {k: float(report[name][k]) for k in ("precision", "recall", "f1-score", "support")}
        if pos.any() and (~pos).any():
            entry["roc_auc"] = float(roc_auc_score(pos, probs[:, i]))
            entry["average_precision"] = float(average_precision_score(pos, probs[:, i]))
        per_class[name] = entry
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(labels),
        "report": text,
    }


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: list[dict], path: Path) -> Path:
    """Loss and accuracy curves (train/val) over both phases."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(1, len(history) + 1)
    for ax, key in zip(axes, ("loss", "acc")):
        ax.plot(x, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(x, [h[f"val_{key}"] for h in history], "o-", label="validation")
        n1 = sum(1 for h in history if h.get("phase") == 1)
        if 0 < n1 < len(history):
            ax.axvline(n1 + 0.5, color="gray", ls="--", lw=1)
            ax.text(n1 + 0.6, ax.get_ylim()[1], "fine-tune", va="top", fontsize=8, color="gray")
        ax.set_xlabel("epoch (head, then fine-tune)")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("maskwatch classifier training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc_pr(y_true: np.ndarray, probs: np.ndarray, labels: tuple[str, ...], path: Path) -> Path:
    """One-vs-rest ROC and precision-recall curves per class."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for i, name in enumerate(labels):
        pos = y_true == i
        if not pos.any() or pos.all():
            continue
        fpr, tpr, _ = roc_curve(pos, probs[:, i])
        prec, rec, _ = precision_recall_curve(pos, probs[:, i])
        a1.plot(fpr, tpr, label=name)
        a2.plot(rec, prec, label=name)
    a1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (one vs rest)")
    a2.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out: Path, y_true: np.ndarray, probs: np.ndarray, subsets: dict[str, np.ndarray] | None = None,
                 history: list[dict] | None = None, name: str = "eval") -> dict[str, Any]:
    """Metrics JSON + plots into ``out``; ``subsets`` maps a name to a boolean mask of rows."""
    out.mkdir(parents=True, exist_ok=True)
    result = classification_metrics(y_true, probs)
    result["subsets"] = {}
    for key, mask in (subsets or {}).items():
        if mask.any():
            sub = classification_metrics(y_true[mask], probs[mask])
            sub.pop("report")
            result["subsets"][key] = sub
    plot_matrix(result["confusion_matrix"], result["labels"], result["labels"], out / f"{name}_confusion.png")
    plot_roc_pr(y_true, probs, LABELS, out / f"{name}_roc_pr.png")
    if history:
        plot_history(history, out / "curves.png")
    (out / f"{name}_metrics.json").write_text(json.dumps(result, indent=2))
    (out / f"{name}_report.txt").write_text(result["report"])
    return result
