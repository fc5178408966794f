"""Training: the loop, losses, metrics, checkpoints, plots."""
from .loop import TrainConfig, train  # noqa: F401
