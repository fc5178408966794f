"""Training checkpoints: atomic writes (temp file, fsync, rename) and safe reads (``weights_only=True``)."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def save_checkpoint(path, state: dict):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path, device="cpu") -> dict:
    # Only tensors, numbers, strings and containers are stored: no pickled code is accepted.
    return torch.load(path, map_location=device, weights_only=True)
