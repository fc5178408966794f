"""Two readings of the same logits: the most accurate one, and a balanced one in which rare classes (disgust, fear,
contempt: a few percent of FER+) are named more often.

The balanced reading is post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR
2021): ``logits / T - tau * log(prior)``, where ``prior`` is the training split's class frequencies and ``T`` the
model's temperature; ``tau = 1`` is the posterior under equal class priors. ``tau`` is chosen on the selection
slice of train (never on FER+ valid): the strength that maximises balanced accuracy while accuracy stays within
``max_loss`` of the unadjusted reading (``MAX_LOSS``, 2.5 points: a setting a visitor chooses to see the rare
classes named, at a cost the page and the cards state). A weight's config.json records it (``balanced``), with
how it was chosen:

    python train_scripts/fit_balance.py weights/resnet_dda --data cache:.data/ferplus.npz.xz --select ferplus
"""
from __future__ import annotations

import numpy as np
import torch

SETTINGS = ("accurate", "balanced")
TAU_GRID = tuple(round(0.1 * i, 1) for i in range(0, 21))
MAX_LOSS = 0.025  # accuracy the balanced reading may lose on the selection slice


def class_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return (counts + 1) / (counts.sum() + n_classes)  # no class has probability 0


def offset(config: dict, setting: str = "accurate") -> torch.Tensor | None:
    """What the setting subtracts from the tempered logits (None for the accurate reading, or when the weight
    records no balanced reading)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    b = config.get("balanced")
    if setting == "accurate" or not b:
        return None
    return float(b["tau"]) * torch.log(torch.tensor(b["prior"], dtype=torch.float32))


def _scores(logits: torch.Tensor, labels: np.ndarray, names=None) -> dict:
    pred = logits.argmax(1).numpy()
    recalls = {int(c): float((pred[labels == c] == c).mean()) for c in np.unique(labels)}
    out = {"accuracy": float((pred == labels).mean()), "balanced_accuracy": float(np.mean(list(recalls.values())))}
    if names is not None:
        out["recall"] = {names[c]: r for c, r in recalls.items()}
    return out


def fit_tau(logits: torch.Tensor, labels: np.ndarray, prior: np.ndarray, max_loss: float = MAX_LOSS,
            grid=TAU_GRID, names=None) -> dict:
    """The strength with the highest balanced accuracy among those that lose at most ``max_loss`` accuracy
    against ``tau = 0``, on ``logits`` (tempered) of a selection split; every strength tried, with its scores
    (and, given the class ``names``, the recall of each class at ``tau = 0`` and at the strength chosen)."""
    log_prior = torch.log(torch.tensor(prior, dtype=torch.float32))
    tried = []
    for tau in grid:
        tried.append({"tau": tau, **_scores(logits - tau * log_prior, labels)})
    base = tried[0]["accuracy"]
    allowed = [t for t in tried if t["accuracy"] >= base - max_loss] or tried[:1]
    best = max(allowed, key=lambda t: (t["balanced_accuracy"], -t["tau"]))
    out = {"tau": best["tau"], "max_accuracy_loss": max_loss, "selection": best, "tried": tried}
    if names is not None:
        out["selection"] = {"tau": best["tau"], **_scores(logits - best["tau"] * log_prior, labels, names)}
        out["unadjusted"] = {"tau": 0.0, **_scores(logits, labels, names)}
    return out
