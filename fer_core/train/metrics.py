"""Classification metrics, calibration (ECE) and temperature fitting."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def confusion_matrix(y_true, y_pred, n: int) -> np.ndarray:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017)."""
    conf, pred = probs.max(1), probs.argmax(1)
    correct = (pred == y_true).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def classification_report(y_true, probs, names) -> dict:
    """Accuracy, balanced accuracy, per-class precision / recall / F1 / support, confusion matrix, ECE, NLL."""
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    n = len(names)
    y_pred = probs.argmax(1)
    cm = confusion_matrix(y_true, y_pred, n)
    support, predicted, tp = cm.sum(1), cm.sum(0), np.diag(cm)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    present = support > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(names)},
        "confusion_matrix": cm.tolist(),
        "labels": list(names),
        "ece": expected_calibration_error(probs, y_true),
        "nll": float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, None)).mean()) if len(y_true) else 0.0,
    }


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, max_iter: int = 200) -> float:
    """The temperature T minimising the NLL of ``softmax(logits / T)`` (LBFGS on log T)."""
    logits, y = logits.detach().double(), y.detach().long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def summarize(rep: dict) -> dict:
    """What a weights config records of a :func:`classification_report` (no NLL, precision or F1)."""
    keep = ("n", "accuracy", "balanced_accuracy", "ece", "confusion_matrix", "labels")
    out = {k: rep[k] for k in keep}
    out["recall"] = {k: v["recall"] for k, v in rep["per_class"].items()}
    for k in ("classes_only_in_model", "ece_before_temperature", "temperature", "without_flip"):
        if k in rep:
            out[k] = rep[k]
    return out
