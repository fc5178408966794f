"""Everything a run builds before its first step: the data splits, the model, the optimiser."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data import load_cache, read_dataset, resolve_data
from ..data.holdout import first, only, read_list, without
from ..models import create_model, get_entry
from ..models.fusion import FusionNet
from ..models.registry import model_config_args
from ..preprocess import FER_CROP, DataConfig
from ..weights import CONFIG_FILE, WEIGHTS_FILE, load_pretrained, read_config
from .config import TrainConfig
from .distill import load_teacher, mix_targets
from .sam import SAM


def _read_split(data: str, split: str, protocol: str):
    kind, path = resolve_data(data)
    if kind != "cache":
        return read_dataset(kind, path, split, protocol)
    splits = load_cache(path)
    if split not in splits:
        raise ValueError(f"{path} has splits {sorted(splits)}, not {split!r}")
    return splits[split]


def load_splits(cfg: TrainConfig):
    """The training split (``data``, ``protocol``) and the selection split (``val_data`` or ``data``, read with
    ``val_protocol``: models are selected on FER+'s majority labels even when they learn vote distributions).
    With ``select``, the listed images leave the training split and, read with ``val_protocol``, are the
    selection split: the dataset's validation split is then never seen by the run."""
    train_ds = _read_split(cfg.data, cfg.train_split, cfg.protocol)
    if cfg.refit and not cfg.select:
        raise ValueError("--refit folds the chosen run's selection slice back into training: give its --select too")
    if cfg.select:
        path, names = read_list(cfg.select)
        val_ds = only(_read_split(cfg.val_data or cfg.data, cfg.train_split, cfg.val_protocol), names, path.name)
        if not cfg.refit:  # a refit trains on the slice too: its scores there are training scores, only logged
            train_ds = without(train_ds, names, path.name)
    else:
        val_ds = _read_split(cfg.val_data or cfg.data, cfg.val_split, cfg.val_protocol)
    if cfg.limit_train:
        train_ds = first(train_ds, cfg.limit_train)
    if val_ds.label_set.names != train_ds.label_set.names:
        raise ValueError(f"train classes {train_ds.label_set.names} differ from validation classes "
                         f"{val_ds.label_set.names}")
    return train_ds, val_ds


def refit_target(cfg: TrainConfig) -> dict | None:
    """What a refit repeats of the run it refits (``--refit WEIGHTS``): the epoch that run chose, its temperature
    and balanced setting; its schedule must be this run's (the same ``--epochs``)."""
    if not cfg.refit:
        return None
    config = read_config(Path(cfg.refit) / CONFIG_FILE)
    prov = config.get("provenance", {})
    if "best_epoch" not in prov or prov.get("epochs") != cfg.epochs:
        raise ValueError(f"--refit {cfg.refit}: its run chose epoch {prov.get('best_epoch')} of a "
                         f"{prov.get('epochs')}-epoch schedule; give its flags again (--epochs {prov.get('epochs')})")
    return {"weights": str(cfg.refit), "epoch": int(prov["best_epoch"]), "temperature": config["temperature"],
            "balanced": config.get("balanced"), "sha256": config["files"][WEIGHTS_FILE]["sha256"]}


def targets(ds, n_classes) -> torch.Tensor:
    """``N x C`` target distributions: the soft votes when the split has them, else one-hot labels."""
    if ds.soft is not None:
        return torch.from_numpy(ds.soft).float()
    return F.one_hot(torch.from_numpy(ds.labels), n_classes).float()


def train_targets(cfg: TrainConfig, ds, n_classes) -> torch.Tensor:
    """The training targets: :func:`targets`, mixed with the teachers' probabilities when ``distill``."""
    t = targets(ds, n_classes)
    return mix_targets(t, load_teacher(cfg.distill, ds), cfg.distill_weight) if cfg.distill else t


def input_size(cfg: TrainConfig, model: nn.Module | None = None) -> int:
    """The training resolution: ``--input-size``, else the model's own (a fusion's), else the registered one."""
    if cfg.input_size:
        return int(cfg.input_size)
    own = getattr(model, "input_size", None) or cfg.model_args.get("input_size")
    if own:
        return int(own[-1] if isinstance(own, (tuple, list)) else own)
    return get_entry(cfg.model).input_size[1]


def data_config(cfg: TrainConfig, model: nn.Module, train_ds) -> DataConfig:
    """What the run feeds its model, recorded in its export: the input size (a fusion's per branch), the mean and
    std it normalises with, the crop its training images are (FER-style crops at their own side), the flip."""
    sizes = tuple(int(s[-1]) for s in model.branch_input_sizes) if hasattr(model, "branch_input_sizes") \
        else (input_size(cfg, model),)
    crop = replace(FER_CROP, size=int(train_ds.images.shape[1]), grayscale=bool(train_ds.grayscale))
    return DataConfig(input_sizes=sizes, mean=tuple(cfg.mean), std=tuple(cfg.std), crop=crop, tta_flip=cfg.tta_flip)


def build_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    if cfg.model == "fusion":
        if not (cfg.branch_a and cfg.branch_b):
            raise ValueError("fusion training needs --branch-a and --branch-b (trained branch weights)")
        a, b = load_pretrained(cfg.branch_a), load_pretrained(cfg.branch_b)
        sizes = [tuple(m.pretrained_cfg["input_size"][1:]) for m in (a, b)]
        return FusionNet.from_branches(a, b, mode=cfg.fusion_mode, branch_input_sizes=sizes,
                                       train_branches=True if cfg.joint else None, **cfg.model_args)
    args = dict(dict(num_classes=num_classes), **cfg.model_args)
    if get_entry(cfg.model).sized_by_input:
        args["input_size"] = input_size(cfg)
    return create_model(cfg.model, **args)


def init_from(model: nn.Module, weights: str) -> None:
    """Copy trained weights (a folder or a shipped name) into ``model``: same architecture and arguments only."""
    src = load_pretrained(weights)
    mine = (getattr(model, "arch_name", None), model_config_args(model))
    theirs = (getattr(src, "arch_name", None), model_config_args(src))
    if mine != theirs:
        raise ValueError(f"--init-from {weights}: those weights are {theirs[0]} {theirs[1]}, this run builds "
                         f"{mine[0]} {mine[1]}; pass the same --model, --model-args and --input-size")
    model.load_state_dict(src.state_dict())


def build_optimizer(cfg: TrainConfig, params, amp: str):
    """(base optimiser, the one that steps: SAM around it or itself). No weight decay on biases and norms."""
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        base = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    elif cfg.optimizer == "adamw":
        base = torch.optim.AdamW(groups, lr=cfg.lr)
    else:
        raise ValueError(f"optimizer must be sgd or adamw, got {cfg.optimizer!r}")
    if cfg.sam_rho > 0 and amp == "fp16":
        raise ValueError("SAM with fp16 loss scaling is not supported: use --amp bf16 or off")
    return base, (SAM(base, rho=cfg.sam_rho) if cfg.sam_rho > 0 else base)
