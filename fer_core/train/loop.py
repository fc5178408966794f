"""The training loop: data resident on the device, batched device augmentation, AMP, DDP, exact resume.

Single process (CPU or one GPU) or ``torchrun`` (DDP; NCCL on GPUs, gloo on CPUs) with the same code. Every
step's randomness (augmentation, dropout) is seeded from ``(seed, epoch, step, rank)`` and every epoch's order
from ``(seed, epoch)``, so a run resumed from a checkpoint, even one written mid-epoch, continues exactly as the
uninterrupted run would have (bit for bit on CPU; on GPUs up to cuDNN's nondeterministic kernels, see README).
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import load_cache, read_dataset
from ..files import write_text_atomic
from ..options import option
from ..data.augment import AugmentConfig, GpuAugment
from ..models import attention_loss, create_model, get_entry
from ..models.fusion import MODES as FUSION_MODES, FusionNet
from ..models.registry import IMAGENET_MEAN, IMAGENET_STD, model_config_args
from ..weights import DEFAULT_CROP, STORAGE_DTYPES, build_config, load_pretrained, save_pretrained
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import predict_logits
from .hardware import AMP_DTYPES, device_description, resolve_amp
from .metrics import classification_report, expected_calibration_error, fit_temperature, summarize
from .sam import SAM


PROTOCOLS = ("majority", "probability")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")
AMP_CHOICES = ("auto", "bf16", "fp16", "off")


@dataclass
class TrainConfig:
    model: str = option("ddamfn", "a registered model: ddamfn, resnet18_dda, resnet34_dda, resnet50_dda, fusion")
    model_args: dict = option({}, 'the model\'s arguments as JSON, e.g. \'{"dda_stages": [3, 4], "drop_rate": 0.4}\'')
    data: str = option("ferplus:../shared/datasets/ferplus",
                       "KIND:PATH (ferplus, fer2013 (folders or a .csv), rafdb, affectnet, affectnet7, folder) or "
                       "cache:FILE from prepare_data.py")
    protocol: str = option("majority", "FER+: majority (hard labels) or probability (vote distributions)", PROTOCOLS)
    train_split: str = option("train", "split to train on")
    val_split: str = option("valid", "split to select on (never the test split)")
    val_data: str = option("", "where the selection split lives, if not in --data (e.g. a majority-protocol cache)")
    val_protocol: str = option("majority", "protocol of the selection split (read from KIND:PATH)", PROTOCOLS)
    input_size: int = option(0, "input side in pixels (0: the model's registered size)")
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
    aug: AugmentConfig = option(AugmentConfig, "augmentation (flags per field)")
    amp: str = option("auto", "autocast: auto = bf16 on CUDA and on CPUs with native bf16, else off", AMP_CHOICES)
    channels_last: bool = option(True, "channels_last memory format (pays on GPUs and for DDAMFN's depthwise convs)")
    compile: bool = option(False, "torch.compile the training step (minutes of compiling, then ~1.5x on CPU)")
    threads: int = option(0, "CPU threads for torch (0: torch's default, one per core)")
    tta_flip: bool = option(True, "evaluate with test-time horizontal flip")
    seed: int = option(0, "seed of the initialisation, data order and augmentation")
    out_dir: str = option("", "run folder (default: RUNS_DIR/MODEL)", flag="out")
    runs_dir: str = option("", "where run folders live (default: $FER_RUNS, else ~/.cache/fer/runs)")
    resume: bool = option(False, "continue from OUT/last.pt (model, optimiser, schedule, data order)")
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
        """``out_dir``, else ``runs_dir/model``; runs live outside the checkout so a fresh clone can resume them."""
        if self.out_dir:
            return Path(self.out_dir).expanduser()
        return default_runs_dir(self.runs_dir) / self.model


def default_runs_dir(runs_dir: str = "") -> Path:
    return Path(runs_dir or os.environ.get("FER_RUNS") or Path.home() / ".cache/fer/runs").expanduser()


# -- setup -------------------------------------------------------------------------------------------------------

def _dist_env():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def _read_split(data: str, split: str, protocol: str):
    kind, _, path = data.partition(":")
    if kind != "cache":
        return read_dataset(kind, path, split, protocol)
    splits = load_cache(path)
    if split not in splits:
        raise ValueError(f"{path} has splits {sorted(splits)}, not {split!r}")
    return splits[split]


def load_splits(cfg: TrainConfig):
    """The training split (``data``, ``protocol``) and the selection split (``val_data`` or ``data``, read with
    ``val_protocol``: models are selected on FER+'s majority labels even when they learn vote distributions)."""
    return (_read_split(cfg.data, cfg.train_split, cfg.protocol),
            _read_split(cfg.val_data or cfg.data, cfg.val_split, cfg.val_protocol))


def _targets(ds, n_classes) -> torch.Tensor:
    if ds.soft is not None:
        return torch.from_numpy(ds.soft).float()
    return F.one_hot(torch.from_numpy(ds.labels), n_classes).float()


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


def input_size(cfg: TrainConfig, model: nn.Module | None = None) -> int:
    """The training resolution: ``--input-size``, else the model's own (a fusion's), else the registered one."""
    if cfg.input_size:
        return int(cfg.input_size)
    own = getattr(model, "input_size", None) or cfg.model_args.get("input_size")
    if own:
        return int(own[-1] if isinstance(own, (tuple, list)) else own)
    return get_entry(cfg.model).input_size[1]


METRIC_FIELDS = ["epoch", "step", "train_loss", "train_acc", "val_acc", "val_bacc", "lr", "img_per_s", "elapsed_s"]


class TrainStep(nn.Module):
    """What DDP wraps: one forward that returns the logits and, for DDAMFN, the heads' maps."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model.forward_details(x)
        return out["logits"], out.get("head_maps")


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
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


def soft_cross_entropy(logits, targets, smoothing: float):
    if smoothing > 0:
        targets = targets * (1 - smoothing) + smoothing / targets.shape[1]
    return -(targets * logits.float().log_softmax(1)).sum(1).mean()


def _step_seed(seed, epoch, step, rank):
    return (seed * 1_000_003 + epoch * 10_007 + step * 101 + rank) % (2**63 - 1)


def epoch_order(n, epoch, cfg, labels=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
    if cfg.balanced_sampling and labels is not None:
        counts = torch.bincount(labels)
        w = (1.0 / counts.clamp_min(1).float())[labels]
        return torch.multinomial(w, n, replacement=True, generator=g)
    return torch.randperm(n, generator=g)


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- the loop ----------------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, argv: list[str] | None = None) -> dict:
    world, rank, local_rank = _dist_env()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    out = cfg.run_dir()
    if main:
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    train_ds, val_ds = load_splits(cfg)
    if cfg.limit_train:
        keep = slice(0, cfg.limit_train)
        train_ds.images, train_ds.labels = train_ds.images[keep], train_ds.labels[keep]
        train_ds.soft = None if train_ds.soft is None else train_ds.soft[keep]
    labels = train_ds.label_set
    if val_ds.label_set.names != labels.names:
        raise ValueError(f"train classes {labels.names} differ from validation classes {val_ds.label_set.names}")
    if main:
        print(train_ds.report(), val_ds.report(), sep="\n", flush=True)
        print(f"device {device}, world size {world}", flush=True)
    n_classes = len(labels)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, n_classes)
    if cfg.init_from:
        init_from(model, cfg.init_from)
        if main:
            print(f"initialised from {cfg.init_from} (fresh schedule)", flush=True)
    size = input_size(cfg, model)
    model.to(device)
    amp = resolve_amp(cfg.amp, device)
    amp_dtype = AMP_DTYPES[amp]
    channels_last = cfg.channels_last
    if main:
        print(f"input {size}x{size}, precision {amp if amp != 'off' else 'fp32'}, "
              f"{'channels_last' if channels_last else 'contiguous'}, {torch.get_num_threads()} threads"
              + (", compiled" if cfg.compile else ""), flush=True)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    images = torch.from_numpy(train_ds.images).to(device)
    targets = _targets(train_ds, n_classes).to(device)
    label_t = torch.from_numpy(train_ds.labels)
    val_images = torch.from_numpy(val_ds.images).to(device)
    val_labels = val_ds.labels
    per_rank = cfg.batch_size // world
    if per_rank < 1:
        raise ValueError(f"batch size {cfg.batch_size} is smaller than the {world} processes")
    steps_per_epoch = len(images) // (per_rank * world)
    if steps_per_epoch < 1:
        raise ValueError(f"{len(images)} training images cannot fill one batch of {cfg.batch_size}")

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:  # late fusion: nothing to learn, only to measure
        if main:
            print("no trainable parameters (late fusion): evaluating and exporting only", flush=True)
            logits = predict_logits(model, torch.from_numpy(val_ds.images).to(device), size, IMAGENET_MEAN,
                                    IMAGENET_STD, cfg.tta_flip).cpu()
            acc = float((logits.argmax(1).numpy() == val_ds.labels).mean())
            save_checkpoint(out / "best.pt", {"model": model.state_dict(), "best": {"accuracy": acc, "epoch": 0}})
            _truncate_csv(out / "metrics.csv", 0, METRIC_FIELDS)
            return _finish(cfg, out, model, labels, torch.from_numpy(val_ds.images).to(device), val_ds.labels, size,
                           None, False, argv, device, t_start, train_ds.grayscale, int(train_ds.images.shape[1]))
        return {}
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
    opt = SAM(base, rho=cfg.sam_rho) if cfg.sam_rho > 0 else base
    sched = torch.optim.lr_scheduler.LambdaLR(base, lr_lambda(cfg, steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    ema = None
    if cfg.ema_decay > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)

    step_module = TrainStep(model)
    if world > 1:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[local_rank] if device.type == "cuda" else None)
    run_step = torch.compile(step_module) if cfg.compile else step_module
    augment = GpuAugment(size, IMAGENET_MEAN, IMAGENET_STD, cfg.aug)

    start_epoch, start_step, best, csv_rows = 0, 0, {"accuracy": -1.0, "epoch": -1}, 0
    resumed_stats = None  # running loss / accuracy of a half-done epoch
    ckpt_path = out / "last.pt"
    if cfg.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        model.load_state_dict(ck["model"])
        base.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        if ema is not None and ck.get("ema") is not None:
            ema.load_state_dict(ck["ema"])
        start_epoch, start_step, best, csv_rows = ck["epoch"], ck["step"], ck["best"], ck["csv_rows"]
        resumed_stats = ck.get("epoch_stats")
        torch.set_rng_state(ck["rng"]["torch"])
        if main:
            print(f"resumed from {ckpt_path}: epoch {start_epoch}, step {start_step}", flush=True)
    elif cfg.resume and main:
        print(f"--resume: no checkpoint at {ckpt_path}, starting fresh", flush=True)

    metrics_csv = out / "metrics.csv"
    fields = METRIC_FIELDS
    writer = None
    if main:
        _truncate_csv(metrics_csv, csv_rows, fields)
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tb"))
        except ImportError:
            print("tensorboard not installed: no TensorBoard scalars", flush=True)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))

    def checkpoint(epoch, step, stats=None, name="last.pt"):
        if not main:
            return
        save_checkpoint(out / name, {
            "model": model.state_dict(), "optimizer": base.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "epoch": epoch, "step": step, "best": best, "csv_rows": csv_rows, "epoch_stats": stats,
            "rng": {"torch": torch.get_rng_state()}, "config": json.dumps(asdict(cfg), default=str)})
        # where the checkpoint stands, for people and tools
        write_text_atomic(out / name.replace(".pt", ".json"), json.dumps({"epoch": epoch, "step": step}))

    eval_model = ema.module if ema is not None else model
    val_t = None
    for epoch in range(start_epoch, cfg.epochs):
        order = epoch_order(len(images), epoch, cfg, label_t)
        first = start_step if epoch == start_epoch else 0
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        if first and resumed_stats is not None:
            loss_sum += resumed_stats["loss_sum"]
            correct += resumed_stats["correct"]
            seen = int(resumed_stats["seen"])
        t0 = time.time()
        bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not main,
                   unit="step", dynamic_ncols=True, mininterval=1.0)
        for step in bar:
            idx = order[(step * world + rank) * per_rank:(step * world + rank + 1) * per_rank].to(device)
            seed = _step_seed(cfg.seed, epoch, step, rank)
            torch.manual_seed(seed)
            g = torch.Generator(device=device).manual_seed(seed)
            x, t = augment(images[idx], targets[idx], g)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)

            def forward_loss():
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits, heads = run_step(x)
                loss = soft_cross_entropy(logits, t, cfg.label_smoothing)
                if heads is not None and cfg.attention_loss_weight > 0:
                    loss = loss + cfg.attention_loss_weight * attention_loss([h.float() for h in heads])
                return loss, logits

            loss, logits = forward_loss()
            base.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(base)
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            if cfg.sam_rho > 0:
                opt.first_step()
                base.zero_grad(set_to_none=True)
                forward_loss()[0].backward()
                opt.second_step()
            else:
                scaler.step(base)
                scaler.update()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(1) == t.argmax(1)).sum()
            seen += len(idx)
            done = step - first + 1
            if main and (done % cfg.log_every == 0 or step == steps_per_epoch - 1):
                rate = done * per_rank * world / max(time.time() - t0, 1e-9)
                bar.set_postfix(loss=f"{float(loss_sum) / (step + 1):.4f}", img_s=f"{rate:,.0f}",
                                lr=f"{sched.get_last_lr()[0]:.4g}")
            if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < steps_per_epoch:
                checkpoint(epoch, step + 1, {"loss_sum": float(loss_sum), "correct": float(correct), "seen": seen})
        bar.close()
        elapsed = time.time() - t0
        if world > 1:
            stats = torch.stack([loss_sum, correct]).float()
            dist.all_reduce(stats)
            loss_sum, correct = stats[0] / world, stats[1]
        train_loss = float(loss_sum) / steps_per_epoch
        train_acc = float(correct) / max(1, seen * world)
        rate = (steps_per_epoch - first) * per_rank * world / max(elapsed, 1e-9)
        row = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "train_loss": f"{train_loss:.5f}",
               "train_acc": f"{train_acc:.5f}", "lr": f"{sched.get_last_lr()[0]:.6g}",
               "img_per_s": f"{rate:.1f}", "elapsed_s": f"{time.time() - t_start:.1f}"}
        if main:
            val_t = predict_logits(eval_model, val_images, size, IMAGENET_MEAN, IMAGENET_STD, cfg.tta_flip,
                                   amp_dtype=amp_dtype, channels_last=channels_last).cpu()
            rep = classification_report(val_labels, val_t.softmax(1).numpy(), labels.names)
            row.update(val_acc=f"{rep['accuracy']:.5f}", val_bacc=f"{rep['balanced_accuracy']:.5f}")
            print(f"epoch {epoch + 1}: loss {train_loss:.4f} train acc {train_acc:.4f} | val acc "
                  f"{rep['accuracy']:.4f} balanced {rep['balanced_accuracy']:.4f} | "
                  f"{row['img_per_s']} img/s", flush=True)
            if rep["accuracy"] > best["accuracy"]:
                best = {"accuracy": rep["accuracy"], "balanced_accuracy": rep["balanced_accuracy"], "epoch": epoch + 1}
                save_checkpoint(out / "best.pt", {"model": eval_model.state_dict(), "best": best})
            with open(metrics_csv, "a", newline="") as f:
                csv.DictWriter(f, fields).writerow(row)
            csv_rows += 1
            if writer is not None:
                for k in ("train_loss", "train_acc", "val_acc", "val_bacc", "lr", "img_per_s"):
                    writer.add_scalar(k, float(row[k]), epoch + 1)
                writer.flush()
        checkpoint(epoch + 1, 0)
        if world > 1:
            dist.barrier()

    result = {"best": best, "out_dir": str(out)}
    if main:
        result.update(_finish(cfg, out, model, labels, val_images, val_labels, size, amp_dtype, channels_last,
                              argv, device, t_start, train_ds.grayscale, int(train_ds.images.shape[1])))
        if writer is not None:
            writer.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _init_note(cfg: TrainConfig) -> str:
    if cfg.model == "fusion":
        how = "fine-tuned jointly" if cfg.joint else "frozen"
        return f"branches from {cfg.branch_a} and {cfg.branch_b}, {how}"
    if cfg.init_from:
        return f"warm start from {cfg.init_from} (see its own provenance), fresh schedule"
    return "from scratch (no pretrained backbone)"


def _truncate_csv(path: Path, rows: int, fields):
    """Keep the header and the first ``rows`` rows (a killed run may have logged past its last checkpoint)."""
    old = list(csv.DictReader(open(path))) if path.exists() else []
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(old[:rows])


def _finish(cfg, out, model, labels, val_images, val_labels, size, amp_dtype, channels_last, argv, device,
            t_start, grayscale, source_size) -> dict:
    """Load the best weights, fit a temperature on validation, export safetensors + config + plots."""
    from .plots import plot_confusion, plot_curves

    best = load_checkpoint(out / "best.pt", device)
    model.load_state_dict({k.removeprefix("module."): v for k, v in best["model"].items() if k != "n_averaged"})
    logits = predict_logits(model, val_images, size, IMAGENET_MEAN, IMAGENET_STD, cfg.tta_flip,
                            amp_dtype=amp_dtype, channels_last=channels_last).cpu()
    y = torch.from_numpy(val_labels)
    temperature = fit_temperature(logits, y)
    rep = classification_report(val_labels, (logits / temperature).softmax(1).numpy(), labels.names)
    rep["ece_before_temperature"] = expected_calibration_error(logits.softmax(1).numpy(), val_labels)
    rep["temperature"] = temperature
    (out / "val_report.json").write_text(json.dumps(rep, indent=2))
    plot_curves(out / "metrics.csv", out / "curves.png")
    plot_confusion(rep["confusion_matrix"], labels.names, out / "confusion.png",
                   f"{cfg.model} on {cfg.val_split}: acc {rep['accuracy']:.4f}")
    kind, _, path = cfg.data.partition(":")
    provenance = {
        "command": " ".join(argv if argv is not None else sys.argv),
        "commit": git_commit(),
        "dataset": kind if kind != "cache" else "cache:" + Path(path).name,
        "protocol": cfg.protocol, "train_split": cfg.train_split, "selection_split": cfg.val_split,
        "selection_protocol": cfg.val_protocol,
        "seed": cfg.seed, "epochs": cfg.epochs, "best_epoch": best["best"]["epoch"],
        "device": device_description(device), "precision": resolve_amp(cfg.amp, device),
        "wall_time_s": round(time.time() - t_start, 1),
        "init": _init_note(cfg),
    }
    metrics = {"validation": summarize(rep)}  # the selection split, float32, after temperature scaling
    model.cpu().to(memory_format=torch.contiguous_format)
    config = build_config(model, label_set=labels, input_size=(3, size, size), grayscale=grayscale,
                          crop=dict(DEFAULT_CROP, source_size=source_size),
                          temperature=temperature, tta_flip=cfg.tta_flip, provenance=provenance, metrics=metrics)
    export = save_pretrained(model, out / "export", config, storage=cfg.export_storage)
    print(f"best epoch {best['best']['epoch']}: val acc {rep['accuracy']:.4f} (balanced "
          f"{rep['balanced_accuracy']:.4f}), temperature {temperature:.3f}; exported to {export}", flush=True)
    return {"export": str(export), "val_report": rep}
