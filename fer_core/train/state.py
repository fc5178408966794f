"""One training run's state (:class:`Run`), shared by the loop's steps and the export at its end."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.augment import GpuAugment
from ..hardware import AMP_DTYPES
from ..preprocess import DataConfig
from .config import TrainConfig


@dataclass
class Run:
    """One training run's state: what it was asked (``cfg``), what it built, and where it stands."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    world: int
    rank: int
    train_ds: object
    val_ds: object
    model: nn.Module
    data: DataConfig  # what the model is fed (input sizes, mean/std, crop, flip): evaluation and export use it
    amp: str
    images: torch.Tensor  # uint8 training images on the device
    targets: torch.Tensor  # N x C target distributions on the device
    class_weights: torch.Tensor | None  # C loss weights per class (class_balance), else None
    val_images: torch.Tensor
    per_rank: int
    steps_per_epoch: int
    params: list
    optimizer: torch.optim.Optimizer | None = None  # the base optimiser (SAM wraps it when sam_rho > 0)
    stepper: object = None  # what steps: SAM or the optimiser
    scheduler: object = None
    scaler: object = None
    ema: nn.Module | None = None
    step_module: nn.Module | None = None  # TrainStep, DDP-wrapped and compiled as asked
    augment: GpuAugment | None = None
    epoch: int = 0  # where the run stands: the next step to run is (epoch, step)
    step: int = 0
    best: dict = field(default_factory=lambda: {"accuracy": -1.0, "epoch": -1})
    csv_rows: int = 0  # rows of metrics.csv that belong to the checkpointed state
    resumed_stats: dict | None = None  # running loss / accuracy of the half-done epoch a resume starts in
    epoch_summary: dict | None = None  # train loss, accuracy and speed of the epoch just trained
    elapsed_before: float = 0.0  # wall time of earlier processes of this run (resumed runs)
    refit: dict | None = None  # with --refit: the chosen run's epoch, temperature, balanced (setup.refit_target)
    data_digest: str = ""  # of what it learns from and is chosen on (loop.data_digest), once computed
    t_start: float = field(default_factory=time.time)
    writer: object = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def amp_dtype(self):
        return AMP_DTYPES[self.amp]

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.t_start

    def log(self, *msg, sep=" "):
        if self.main:
            print(*msg, sep=sep, flush=True)
