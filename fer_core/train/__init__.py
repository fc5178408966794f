"""Training: the config, the loop, losses and schedule, metrics, checkpoints, export, plots."""
from .config import TrainConfig  # noqa: F401
from .loop import train  # noqa: F401
