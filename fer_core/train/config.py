"""What a training run is asked to do: one dataclass, each field with its command-line flag
(``train_scripts/train.py`` builds its parser from these fields, see :mod:`fer_core.options`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..data.augment import AugmentConfig
from ..hardware import AMP_CHOICES
from ..models.fusion import MODES as FUSION_MODES
from ..options import option
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD
from ..weights import STORAGE_DTYPES

PROTOCOLS = ("majority", "probability")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")


@dataclass
class TrainConfig:
    model: str = option("ddamfn", "a registered model: ddamfn, resnet18_dda, resnet34_dda, resnet50_dda, fusion")
    model_args: dict = option({}, 'the model\'s arguments as JSON, e.g. \'{"dda_stages": [3, 4], "drop_rate": 0.4}\'')
    data: str = option("ferplus",
                       "KIND (its folder under $FER_DATA) or KIND:PATH (ferplus, fer2013 (folders or a .csv), rafdb, "
                       "affectnet, affectnet7, folder) or cache:FILE from fer-data cache")
    protocol: str = option("majority", "FER+: majority (hard labels) or probability (vote distributions)", PROTOCOLS)
    train_split: str = option("train", "split to train on")
    val_split: str = option("valid", "split to select on (never the test split)")
    val_data: str = option("", "where the selection split lives, if not in --data (e.g. a majority-protocol cache)")
    val_protocol: str = option("majority", "protocol of the selection split (read from KIND:PATH)", PROTOCOLS)
    select: str = option("", "hold these training images out and select on them instead of --val-split: "
                              "'ferplus' (the shipped stratified tenth of FER+ train) or a file of image names")
    refit: str = option("", "refit a chosen run on the whole training split, its --select slice included: the weights "
                             "folder it exported; give its flags again (same schedule), the run stops at its chosen "
                             "epoch and keeps its temperature and balanced setting (judge it on --val-split, once)")
    distill: str = option("", "teacher probabilities for the training images (train_scripts/teach.py's .npz)")
    distill_weight: float = option(0.5, "with --distill: the target is (1 - w) x the labels + w x the teachers'")
    input_size: int = option(0, "input side in pixels (0: the model's registered size)")
    mean: tuple[float, float, float] = option(IMAGENET_MEAN, "per-channel mean subtracted from inputs in [0, 1]")
    std: tuple[float, float, float] = option(IMAGENET_STD, "per-channel standard deviation inputs are divided by")
    epochs: int = option(20, "epochs of the schedule")
    batch_size: int = option(256, "global batch (split across DDP ranks)")
    optimizer: str = option("sgd", "sgd (nesterov) or adamw", OPTIMIZERS)
    lr: float = option(0.1, "peak learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "weight decay (not on biases and norms)")
    sam_rho: float = option(0.0, "> 0 turns on SAM with this radius")
    schedule: str = option("cosine", "learning-rate schedule after the warm-up", SCHEDULES)
    warmup_epochs: float = option(2.0, "linear warm-up, in epochs")
    step_epochs: int = option(10, "step schedule: epochs between decays")
    step_gamma: float = option(0.1, "step schedule: decay factor")
    min_lr_ratio: float = option(0.0, "cosine schedule: final lr as a fraction of the peak")
    label_smoothing: float = option(0.1, "label smoothing")
    attention_loss_weight: float = option(0.1, "weight of DDAMFN's head-diversity loss (0: off)")
    grad_clip: float = option(0.0, "clip the gradient norm (0: off)")
    ema_decay: float = option(0.0, "> 0 keeps an EMA of the weights; evaluation and export use it")
    balanced_sampling: bool = option(False, "sample classes equally often")
    class_balance: float = option(0.0, "class-balanced loss (Cui et al. 2019): each class's term weighted by "
                                       "(1 - beta) / (1 - beta^n), n its training votes, beta = this (0.9995: FER+'s "
                                       "contempt x3.7, neutral x0.8; 0: off); after --init-from: LDAM-DRW's deferred "
                                       "re-weighting")
    aug: AugmentConfig = option(AugmentConfig, "augmentation (flags per field)")
    amp: str = option("auto", "autocast: auto = bf16 on CUDA and on CPUs with native bf16, else off", AMP_CHOICES)
    channels_last: bool = option(True, "channels_last memory format (pays on GPUs and for DDAMFN's depthwise convs)")
    compile: bool = option(False, "torch.compile the training step (minutes of compiling, then ~1.5x on CPU)")
    threads: int = option(0, "CPU threads for torch (0: torch's default, one per core)")
    tta_flip: bool = option(True, "evaluate with test-time horizontal flip")
    seed: int = option(0, "seed of the initialisation, data order and augmentation")
    out_dir: str = option("", "run folder (default: RUNS_DIR/NAME)", flag="out")
    name: str = option("", "the run folder's name in RUNS_DIR (default: the model's name); portable, unlike --out")
    runs_dir: str = option("", "where run folders live (default: $FER_RUNS, else ~/.cache/fer/runs)")
    resume: bool = option(False, "continue from OUT/last.pt (model, optimiser, schedule, data order)")
    export_only: bool = option(False, "export OUT/best.pt as it stands (a run going on or stopped) and exit")
    init_from: str = option("", "start from these weights (a folder or a shipped name) with a fresh schedule")
    save_every: int = option(0, "also checkpoint every N steps (0: at epoch ends only)")
    limit_train: int = option(0, "use only the first N training images (0: all)")
    export_storage: str = option("float32", "tensor storage of the exported weights", STORAGE_DTYPES)
    branch_a: str = option("", "fusion: weights of branch A (DDAMFN), a folder or a shipped name")
    branch_b: str = option("", "fusion: weights of branch B (ResNet+DDA)")
    fusion_mode: str = option("attention", "fusion: how the branches are joined", FUSION_MODES)
    joint: bool = option(False, "fusion: fine-tune the branches too")
    log_every: int = option(20, "progress-bar update every N steps")

    def run_dir(self) -> Path:
        """``out_dir``, else ``runs_dir/name`` (``name`` defaults to the model's); runs live outside the checkout
        so a fresh clone can resume them."""
        if self.out_dir:
            return Path(self.out_dir).expanduser()
        return default_runs_dir(self.runs_dir) / (self.name or self.model)


def default_runs_dir(runs_dir: str = "") -> Path:
    return Path(runs_dir or os.environ.get("FER_RUNS") or Path.home() / ".cache/fer/runs").expanduser()
