"""Training checkpoints: atomic writes (temp file, fsync, rename) and safe reads (``weights_only=True``)."""
from __future__ import annotations

import torch

from ..files import atomic_output


def save_checkpoint(path, state: dict):
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path, device="cpu") -> dict:
    # Only tensors, numbers, strings and containers are stored: no pickled code is accepted.
    return torch.load(path, map_location=device, weights_only=True)
