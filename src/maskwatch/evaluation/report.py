"""Detection evaluation report: ``metrics.json``, ``report.md``, ``pr_curves.png``, ``confusion.png``,
``ap_by_size.png`` (matplotlib, the ``eval`` extra), and two galleries of the errors most worth a look,
``false_positives.jpg`` and ``missed.jpg`` (OpenCV)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _interval(ci: list[float] | None) -> str:
    return "" if not ci else f" ({_f(ci[0])}–{_f(ci[1])})"


def markdown(m: dict[str, Any], title: str = "Detection evaluation") -> str:
    """A human-readable summary of `evaluate_detection`'s result."""
    lines = [f"# {title}", ""]
    cfg = m.get("config", {})
    if cfg:
        lines += [", ".join(f"{k}: `{v}`" for k, v in cfg.items()), ""]
    lines += [f"{m['n_images']} images, {m['n_faces']} faces, {m['n_detections']} detections.", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key, label in [("mAP50", "mAP@0.5 (3 classes, all-point)"), ("mAP50_95", "mAP@0.5:0.95"),
                       ("mAP50_coco101", "mAP@0.5 (COCO 101-point)"),
                       ("mAP50_all_classes", "mAP@0.5, every box scored for every class"),
                       ("face_AP50", "face AP@0.5 (class-agnostic)"), ("face_AP50_95", "face AP@0.5:0.95"),
                       ("face_recall", "face recall@0.5"), ("face_precision", "face precision@0.5 (all detections)"),
                       ("face_AP30", "face AP@0.3 (found, boxes judged loosely)"), ("face_recall30", "face recall@0.3")]:
        if key in m:
            ci = m.get(f"{key}_ci95")
            lines.append(f"| {label} | {_f(m[key])}{_interval(ci)} |")
    if "compliance" in m:
        lines.append(f"| compliance mAP@0.5 (with_mask vs. no/incorrect mask) | {_f(m['compliance']['mAP50'])} |")
    lat = m.get("latency", {})
    for part in ("pipeline", "detector", "classifier"):
        if lat.get(part):
            lines.append(f"| {part} latency, median / p90 ms | {lat[part]['median_ms']:.1f} / {lat[part]['p90_ms']:.1f} |")
    lines.append("")
    if "mAP50_ci95" in m:
        lines += ["In brackets: 95% bootstrap interval over the images (AP moves this much with which images "
                  "happen to be in the validation set).", ""]
    if "AP50" in m:
        lines += ["| class | faces | AP@0.5 | AP@0.5:0.95 | recall@0.5 |", "|---|---|---|---|---|"]
        for c, ap in m["AP50"].items():
            ci = m.get("AP50_ci95", {}).get(c)
            lines.append(f"| {c} | {m['gt_per_class'][c]} | {_f(ap)}{_interval(ci)} | {_f(m['AP50_95'][c])} | "
                         f"{_f(m['recall50'][c])} |")
        for k, ap in m["compliance"]["AP50"].items():
            lines.append(f"| {k} ({' + '.join(m['compliance']['groups'][k])}) | | {_f(ap)} | | "
                         f"{_f(m['compliance']['recall50'][k])} |")
        lines.append("")
    lines += ["Face size = sqrt(box area) in pixels.", "",
              "| face size | faces | face AP@0.5 | face recall | mAP@0.5 |", "|---|---|---|---|---|"]
    for name, e in m["by_size"].items():
        lines.append(f"| {name} | {e['n_faces']} | {_f(e['face_AP50'])} | {_f(e['face_recall'])} | {_f(e.get('mAP50'))} |")
    lines.append("")
    if "confusion" in m:
        cm = m["confusion"]
        lines += ["Matched faces (IoU ≥ 0.5, class-agnostic): rows true, columns predicted.", "",
                  "| true \\ predicted | " + " | ".join(cm["columns"]) + " |",
                  "|---" * (len(cm["columns"]) + 1) + "|"]
        for name, row in zip(cm["rows"], cm["matrix"]):
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        lines += ["", f"Accuracy of the classes of matched faces: {_f(cm['matched_accuracy'])}", ""]
    if m.get("mistakes"):
        lines += ["Errors worth a look: `*_false_positives.jpg` (the highest-scored detections matching no annotated "
                  "face — on crowd photos often a face the annotators left out) and `*_missed.jpg` (the largest "
                  "annotated faces no detection found).", ""]
    return "\n".join(lines) + "\n"


def plot_pr_curves(m: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for name, c in m["pr_curves"].items():
        ap = m["face_AP50"] if name == "face" else m.get("AP50", {}).get(name)
        ax.plot(c["recall"], c["precision"], label=f"{name} (AP {_f(ap)}, n={c['n_gt']})",
                lw=2.5 if name == "face" else 1.5, ls="--" if name == "face" else "-")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall at IoU 0.5")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_matrix(matrix: list[list[int]], rows: list[str], columns: list[str], path: Path,
                title: str = "confusion matrix") -> Path:
    """A confusion matrix as a picture: each cell's count and its share of the row (the colour).

    The one confusion plot: detection reports (true class + background x predicted + missed) and
    classifier reports (true x predicted) both draw with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mat = np.asarray(matrix)
    norm = mat / np.maximum(mat.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            ax.text(j, i, f"{mat[i, j]}\n{norm[i, j]:.1%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_confusion(m: dict[str, Any], path: Path) -> Path:
    cm = m["confusion"]
    return plot_matrix(cm["matrix"], cm["rows"], cm["columns"], path, "Faces matched at IoU 0.5")


def plot_by_size(m: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in m["by_size"] if n != "all"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    keys = [("face_recall", "face recall"), ("face_AP50", "face AP@0.5")] + ([("mAP50", "mAP@0.5")] if m["classified"] else [])
    w = 0.8 / len(keys)
    for k, (key, label) in enumerate(keys):
        vals = [m["by_size"][n].get(key) or 0.0 for n in names]
        ax.bar(x + (k - (len(keys) - 1) / 2) * w, vals, w, label=label)
    ax.set_xticks(x, [f"{n}\nn={m['by_size'][n]['n_faces']}" for n in names], fontsize=8)
    ax.set(ylim=(0, 1), title="By face size (sqrt of box area, px)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_SHORT = {"with_mask": "mask", "without_mask": "no mask", "mask_worn_incorrectly": "incorrect"}


def plot_mistakes(entries: list[dict[str, Any]], path: Path, tile: int = 160, cols: int = 8) -> Path | None:
    """A gallery of `maskwatch.evaluation.detection.mistakes` entries: each face with its surroundings
    (one box size on every side), the box drawn, captioned with its label, score or size, and best
    IoU. Images that cannot be read are left out; returns None if nothing could be drawn."""
    import cv2

    from ..errors import ImageReadError
    from ..imageio import read_image, write_image

    tiles = []
    for e in entries:
        try:
            img = read_image(e["image"])
        except ImageReadError:
            continue
        x1, y1, x2, y2 = e["box"]
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        cx1, cy1 = int(max(0, x1 - w)), int(max(0, y1 - h))
        cx2, cy2 = int(min(img.shape[1], x2 + w)), int(min(img.shape[0], y2 + h))
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        crop = np.ascontiguousarray(img[cy1:cy2, cx1:cx2])
        k = tile / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * k)), max(1, round(crop.shape[0] * k))),
                          interpolation=cv2.INTER_NEAREST if k > 1 else cv2.INTER_AREA)
        canvas = np.full((tile + 16, tile, 3), 255, np.uint8)
        canvas[16:16 + crop.shape[0], :crop.shape[1]] = crop
        cv2.rectangle(canvas, (round((x1 - cx1) * k), 16 + round((y1 - cy1) * k)),
                      (round((x2 - cx1) * k), 16 + round((y2 - cy1) * k)), (230, 25, 25), 2)
        canvas[:, -2:] = 255  # a white gap between tiles
        text = _SHORT.get(e.get("label"), "face") + (f" {e['score']:.2f}" if "score" in e else f" {e['size']:.0f}px") \
            + f" IoU {e['iou']:.2f}"
        cv2.putText(canvas, text, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
    if not tiles:
        return None
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % cols)
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    return write_image(path, grid, quality=88)


def write_report(m: dict[str, Any], out_dir: str | Path, name: str = "detection", plots: bool = True) -> dict[str, Path]:
    """Write ``<name>_metrics.json``, ``<name>_report.md`` and the PNG plots; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}_metrics.json", "markdown": out / f"{name}_report.md"}
    paths["json"].write_text(json.dumps(m, indent=1))
    paths["markdown"].write_text(markdown(m))
    if plots:
        paths["pr_curves"] = out / f"{name}_pr_curves.png"
        plot_pr_curves(m, paths["pr_curves"])
        paths["by_size"] = out / f"{name}_by_size.png"
        plot_by_size(m, paths["by_size"])
        if "confusion" in m:
            paths["confusion"] = out / f"{name}_confusion.png"
            plot_confusion(m, paths["confusion"])
    for kind in ("false_positives", "missed"):
        if m.get("mistakes", {}).get(kind) and plot_mistakes(m["mistakes"][kind], out / f"{name}_{kind}.jpg"):
            paths[kind] = out / f"{name}_{kind}.jpg"
    return paths
