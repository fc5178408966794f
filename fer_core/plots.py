"""PNG plots: training curves and confusion matrices (matplotlib, headless)."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(metrics_csv, out_png) -> Path:
    rows = list(csv.DictReader(open(metrics_csv)))
    if not rows:
        return None
    ep = [float(r["epoch"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(ep, [float(r["train_loss"]) for r in rows], label="train loss")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.grid(alpha=0.3), a.legend()
    for key, label in (("train_acc", "train acc"), ("val_acc", "val acc"), ("val_bacc", "val balanced acc")):
        vals = [(e, float(r[key])) for e, r in zip(ep, rows) if r.get(key) not in (None, "")]
        if vals:
            b.plot(*zip(*vals), label=label, marker="o" if len(vals) < 30 else None)
    b.set_xlabel("epoch"), b.set_ylabel("accuracy"), b.grid(alpha=0.3), b.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)


def plot_confusion(cm, names, out_png, title: str = "") -> None:
    """Draw a confusion matrix (rows normalised to recall, counts beside) as a PNG to ``out_png``: a path or a
    binary file object."""
    cm = np.asarray(cm, dtype=np.float64)
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(names), 0.8 + 0.7 * len(names)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix (rows: recall)")
    fig.colorbar(im, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110, format="png")
    plt.close(fig)
