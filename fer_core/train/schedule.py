"""What each step of a run sees, as pure functions of the config, the epoch and the step: the learning rate, the
data order, the seed of its randomness, and its loss. Being functions of (seed, epoch, step) is what lets a run
resumed from any checkpoint continue exactly as the uninterrupted run would have."""
from __future__ import annotations

import math

import torch

from .config import TrainConfig


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    """Multiplier of the peak learning rate at a global step: linear warm-up, then cosine (to ``min_lr_ratio``)
    or step decay."""
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    total = cfg.epochs * steps_per_epoch

    def f(step):
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "cosine":
            t = (step - warm) / max(1, total - warm)
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        return cfg.step_gamma ** (step // (cfg.step_epochs * steps_per_epoch))

    return f


def epoch_order(n, epoch, cfg: TrainConfig, labels=None) -> torch.Tensor:
    """The epoch's sample order (class-balanced draws with replacement when ``balanced_sampling``)."""
    g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
    if cfg.balanced_sampling and labels is not None:
        counts = torch.bincount(labels)
        w = (1.0 / counts.clamp_min(1).float())[labels]
        return torch.multinomial(w, n, replacement=True, generator=g)
    return torch.randperm(n, generator=g)


def step_seed(seed, epoch, step, rank) -> int:
    """The seed of one step's augmentation and dropout on one rank."""
    return (seed * 1_000_003 + epoch * 10_007 + step * 101 + rank) % (2**63 - 1)


def soft_cross_entropy(logits, targets, smoothing: float, class_weights=None):
    """Cross-entropy against target distributions (one-hot or FER+ votes), with label smoothing; with
    ``class_weights`` (C,) each class's term is scaled by its weight."""
    if smoothing > 0:
        targets = targets * (1 - smoothing) + smoothing / targets.shape[1]
    if class_weights is not None:
        targets = targets * class_weights
    return -(targets * logits.float().log_softmax(1)).sum(1).mean()


def class_balanced_weights(counts, beta: float) -> torch.Tensor:
    """Cui et al.'s class-balanced weights, ``(1 - beta) / (1 - beta^n_c)`` for ``counts`` n_c (votes or labels
    per class, may be fractional), scaled so that the average weight over the training samples is 1 (the loss
    keeps its scale and the learning rate its meaning)."""
    n = torch.as_tensor(counts, dtype=torch.float64).clamp_min(1.0)
    if not 0.0 < beta < 1.0:
        raise ValueError(f"class balance beta must be in (0, 1), got {beta}")
    w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    w = w * n.sum() / (w * n).sum()
    return w.float()
