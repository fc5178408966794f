"""The training loop, as a short sequence of named steps around one :class:`Run`:

    run = setup(cfg)            data resident on the device as uint8, model, optimiser, schedule
    resume(run)                 from RUN/last.pt, if asked (model, optimiser, schedule, scaler, EMA, data order)
    for each epoch:
        train_epoch(run)        batched device augmentation, AMP, DDP, a checkpoint every --save-every steps
        evaluate(run)           the selection split; best.pt, metrics.csv, TensorBoard
        checkpoint(run)         RUN/last.pt
    finish(run)                 best weights, temperature, plots, export (fer_core.train.export)

Single process (CPU or one GPU) or ``torchrun`` (DDP; NCCL on GPUs, gloo on CPUs) with the same code. Every
step's randomness (augmentation, dropout) is seeded from ``(seed, epoch, step, rank)`` and every epoch's order
from ``(seed, epoch)`` (:mod:`fer_core.train.schedule`), so a run resumed from a checkpoint, even one written
mid-epoch, continues exactly as the uninterrupted run would have (bit for bit on CPU; on GPUs up to cuDNN's
nondeterministic kernels, see README).
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..data.augment import GpuAugment
from ..files import write_text_atomic
from ..hardware import resolve_amp
from ..models import attention_loss
from ..preprocess import map_inputs
from ..weights import nonfinite_tensors
from .checkpoint import METRIC_FIELDS, data_digest, resume, save_checkpoint, truncate_csv
from .config import TrainConfig
from .evaluation import predict_logits
from .export import finish
from .metrics import classification_report
from .schedule import class_balanced_weights, epoch_order, lr_lambda, soft_cross_entropy, step_seed
from .setup import (
    build_model,
    build_optimizer,
    data_config,
    init_from,
    load_splits,
    refit_target,
    targets,
    train_targets,
)
from .state import Run


class TrainStep(nn.Module):
    """What DDP wraps (and ``--compile`` compiles): one forward returning the logits and DDAMFN's head maps."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model.forward_details(x)
        return out["logits"], out.get("head_maps")


# -- the steps ---------------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, argv: list[str] | None = None) -> dict:
    run = setup(cfg)
    if cfg.export_only or not run.params:  # export a run as it stands; late fusion has nothing to learn
        if not cfg.export_only:
            measure_untrained(run)
        result = finish(run, argv) if run.main else {}
        _close(run)
        return result
    prepare_training(run)
    resume(run)
    for epoch in range(run.epoch, run.refit["epoch"] if run.refit else cfg.epochs):
        train_epoch(run, epoch)
        evaluate(run, epoch)
        checkpoint(run, epoch + 1, 0)
        if run.world > 1:
            dist.barrier()
    result = {"best": run.best, "out_dir": str(run.out)}
    if run.main:
        result.update(finish(run, argv))
    _close(run)
    return result


def setup(cfg: TrainConfig) -> Run:
    """Processes and device, data on the device, the model (seeded, optionally warm-started)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
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
    out = cfg.run_dir()
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    train_ds, val_ds = load_splits(cfg)
    refit = refit_target(cfg)
    n_classes = len(train_ds.label_set)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, n_classes)
    if cfg.init_from and not cfg.export_only:
        init_from(model, cfg.init_from)
    data = data_config(cfg, model, train_ds)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    per_rank = cfg.batch_size // world
    if per_rank < 1:
        raise ValueError(f"batch size {cfg.batch_size} is smaller than the {world} processes")
    steps_per_epoch = len(train_ds.images) // (per_rank * world)
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_ds.images)} training images cannot fill one batch of {cfg.batch_size}")
    run = Run(cfg=cfg, out=out, device=device, world=world, rank=rank, train_ds=train_ds, val_ds=val_ds,
              model=model, data=data, amp=resolve_amp(cfg.amp, device),
              images=torch.from_numpy(train_ds.images).to(device),
              targets=train_targets(cfg, train_ds, n_classes).to(device),
              class_weights=_class_weights(cfg, train_ds, n_classes, device),
              val_images=torch.from_numpy(val_ds.images).to(device),
              per_rank=per_rank, steps_per_epoch=steps_per_epoch,
              params=[p for p in model.parameters() if p.requires_grad], t_start=t_start, refit=refit)
    run.log(train_ds.report(), val_ds.report(), sep="\n")
    run.log(f"device {device}, world size {world}; input {'/'.join(map(str, data.input_sizes))} px, precision "
            f"{run.amp if run.amp != 'off' else 'fp32'}, {'channels_last' if cfg.channels_last else 'contiguous'}, "
            f"{torch.get_num_threads()} threads" + (", compiled" if cfg.compile else ""))
    if cfg.init_from and not cfg.export_only:
        run.log(f"initialised from {cfg.init_from} (fresh schedule)")
    if refit:
        run.log(f"refit of {refit['weights']}: its selection slice trains too; the weights of epoch {refit['epoch']} "
                f"are kept, with its temperature {refit['temperature']:.3f}")
    if run.class_weights is not None:
        run.log(f"class-balanced loss (beta {cfg.class_balance:g}): " + ", ".join(
            f"{n} {w:.2f}" for n, w in zip(train_ds.label_set.names, run.class_weights.tolist())))
    if cfg.distill:
        run.log(f"targets: {1 - cfg.distill_weight:g} x labels + {cfg.distill_weight:g} x the teachers in "
                f"{cfg.distill}")
    return run


def _class_weights(cfg: TrainConfig, train_ds, n_classes: int, device) -> torch.Tensor | None:
    """The class-balanced loss's weights, counted on the split's own labels (its votes when it has them; never
    the teachers')."""
    if not cfg.class_balance:
        return None
    return class_balanced_weights(targets(train_ds, n_classes).sum(0), cfg.class_balance).to(device)


def prepare_training(run: Run) -> None:
    """Optimiser, schedule, scaler, EMA, the (DDP-wrapped, compiled) step, augmentation, logs."""
    cfg = run.cfg
    run.optimizer, run.stepper = build_optimizer(cfg, run.params, run.amp)
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, lr_lambda(cfg, run.steps_per_epoch))
    run.scaler = torch.amp.GradScaler(run.device.type, enabled=run.amp == "fp16")
    if cfg.ema_decay > 0:
        run.ema = torch.optim.swa_utils.AveragedModel(
            run.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    step_module = TrainStep(run.model)
    if run.world > 1:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    run.step_module = torch.compile(step_module) if cfg.compile else step_module
    run.augment = GpuAugment(run.data.input_sizes, run.data.mean, run.data.std, cfg.aug)


def train_epoch(run: Run, epoch: int) -> None:
    """One epoch (or what is left of it), checkpointing every ``save_every`` steps."""
    cfg, world, rank, per_rank = run.cfg, run.world, run.rank, run.per_rank
    order = epoch_order(len(run.images), epoch, cfg, torch.from_numpy(run.train_ds.labels))
    first = run.step if epoch == run.epoch else 0
    run.model.train()
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device)
    seen = 0
    if first and run.resumed_stats is not None:
        loss_sum += run.resumed_stats["loss_sum"]
        correct += run.resumed_stats["correct"]
        seen = int(run.resumed_stats["seen"])
    t0 = time.time()
    bar = tqdm(range(first, run.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not run.main,
               unit="step", dynamic_ncols=True, mininterval=1.0)
    for step in bar:
        idx = order[(step * world + rank) * per_rank:(step * world + rank + 1) * per_rank].to(run.device)
        seed = step_seed(cfg.seed, epoch, step, rank)
        torch.manual_seed(seed)
        g = torch.Generator(device=run.device).manual_seed(seed)
        x, t = run.augment(run.images[idx], run.targets[idx], g)
        if cfg.channels_last:
            x = map_inputs(lambda v: v.contiguous(memory_format=torch.channels_last), x)
        loss, logits = _step(run, x, t)
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == t.argmax(1)).sum()
        seen += len(idx)
        done = step - first + 1
        if done % cfg.log_every == 0 and not bool(torch.isfinite(loss_sum)):
            raise TrainingDiverged(run, f"the training loss is not finite at epoch {epoch + 1}, step {step + 1}")
        if run.main and (done % cfg.log_every == 0 or step == run.steps_per_epoch - 1):
            rate = done * per_rank * world / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{float(loss_sum) / (step + 1):.4f}", img_s=f"{rate:,.0f}",
                            lr=f"{run.scheduler.get_last_lr()[0]:.4g}")
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < run.steps_per_epoch:
            checkpoint(run, epoch, step + 1, {"loss_sum": float(loss_sum), "correct": float(correct), "seen": seen})
    bar.close()
    if world > 1:
        stats = torch.stack([loss_sum, correct]).float()
        dist.all_reduce(stats)
        loss_sum, correct = stats[0] / world, stats[1]
    run.epoch_summary = {"train_loss": float(loss_sum) / run.steps_per_epoch,
                       "train_acc": float(correct) / max(1, seen * world),
                       "img_per_s": (run.steps_per_epoch - first) * per_rank * world / max(time.time() - t0, 1e-9)}


def _step(run: Run, x, t):
    """Forward, loss, backward, optimiser and schedule step (SAM: two forward-backward passes)."""
    cfg = run.cfg

    def forward_loss():
        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
            logits, heads = run.step_module(x)
        loss = soft_cross_entropy(logits, t, cfg.label_smoothing, run.class_weights)
        if heads is not None and cfg.attention_loss_weight > 0:
            loss = loss + cfg.attention_loss_weight * attention_loss([h.float() for h in heads])
        return loss, logits

    loss, logits = forward_loss()
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if cfg.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    if cfg.sam_rho > 0:
        run.stepper.first_step()
        run.optimizer.zero_grad(set_to_none=True)
        forward_loss()[0].backward()
        run.stepper.second_step()
    else:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return loss, logits


def better(report: dict, best: dict) -> bool:
    """Selection: higher accuracy; at equal accuracy (the same count of faces right), higher balanced accuracy."""
    return (report["accuracy"], report["balanced_accuracy"]) > (best["accuracy"], best.get("balanced_accuracy", -1.0))


def evaluate(run: Run, epoch: int) -> None:
    """Score the selection split; keep best.pt; log the epoch to metrics.csv, TensorBoard and the console."""
    if not run.main:
        return
    s = run.epoch_summary
    rep, chosen = None, None
    # with an EMA both the averaged and the live weights are scored, and the better one is kept: an average
    # taken while the weights still move fast can be far worse than either end of it (DDAMFN's first epochs)
    candidates = ([("ema", run.ema.module)] if run.ema is not None else []) + [("live", run.model)]
    if run.refit:  # the slice is training data in a refit: it cannot choose between the averaged and live weights
        candidates = candidates[:1]
    for name, model in candidates:
        logits = predict_logits(model, run.val_images, run.data, amp_dtype=run.amp_dtype,
                                channels_last=run.cfg.channels_last).cpu()
        r = classification_report(run.val_ds.labels, logits.softmax(1).numpy(), run.train_ds.label_set.names)
        if rep is None or better(r, rep):
            rep, chosen = r, (name, model)
    row = {"epoch": epoch + 1, "step": (epoch + 1) * run.steps_per_epoch, "train_loss": f"{s['train_loss']:.5f}",
           "train_acc": f"{s['train_acc']:.5f}", "val_acc": f"{rep['accuracy']:.5f}",
           "val_bacc": f"{rep['balanced_accuracy']:.5f}", "lr": f"{run.scheduler.get_last_lr()[0]:.6g}",
           "img_per_s": f"{s['img_per_s']:.1f}", "elapsed_s": f"{run.elapsed():.1f}"}
    print(f"epoch {epoch + 1}: loss {s['train_loss']:.4f} train acc {s['train_acc']:.4f} | val acc "
          f"{rep['accuracy']:.4f} balanced {rep['balanced_accuracy']:.4f}"
          + (f" ({chosen[0]} weights)" if run.ema is not None else "") + f" | {row['img_per_s']} img/s", flush=True)
    if (epoch + 1 == run.refit["epoch"]) if run.refit else better(rep, run.best):
        run.best = {"accuracy": rep["accuracy"], "balanced_accuracy": rep["balanced_accuracy"], "epoch": epoch + 1,
                    **({"weights": chosen[0]} if run.ema is not None else {})}
        save_checkpoint(run.out / "best.pt", {"model": chosen[1].state_dict(), "best": run.best})
    with open(run.out / "metrics.csv", "a", newline="") as f:
        csv.DictWriter(f, METRIC_FIELDS).writerow(row)
    run.csv_rows += 1
    if run.writer is not None:
        for k in ("train_loss", "train_acc", "val_acc", "val_bacc", "lr", "img_per_s"):
            run.writer.add_scalar(k, float(row[k]), epoch + 1)
        run.writer.flush()


class TrainingDiverged(RuntimeError):
    """NaN or infinite values in the loss or the weights: the run stops and keeps its last finite checkpoint."""

    def __init__(self, run: Run, what: str):
        last = run.out / "last.pt"
        super().__init__(f"{what}; stopped without saving it. {last if last.exists() else 'No checkpoint'} "
                         "holds the last finite state: resume from it (--resume) with a lower --lr, or --amp off")


def checkpoint(run: Run, epoch: int, step: int, stats: dict | None = None) -> None:
    """RUN/last.pt (atomic) and RUN/last.json, where it stands; ``stats`` of a half-done epoch. Weights holding
    NaN or inf are never written: :class:`TrainingDiverged` instead."""
    if not run.main:
        return
    bad = nonfinite_tensors(run.model.state_dict())
    if bad:
        raise TrainingDiverged(run, f"{len(bad)} weight tensors hold NaN or inf at epoch {epoch + 1}, step {step} "
                                    f"(e.g. {next(iter(bad))})")
    save_checkpoint(run.out / "last.pt", {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "epoch": epoch, "step": step, "best": run.best, "csv_rows": run.csv_rows, "epoch_stats": stats,
        "elapsed_s": run.elapsed(), "rng": {"torch": torch.get_rng_state()},
        "config": json.dumps(asdict(run.cfg), default=str), "data_digest": data_digest(run)})
    write_text_atomic(run.out / "last.json", json.dumps({"epoch": epoch, "step": step}))


def measure_untrained(run: Run) -> None:
    """A model with nothing to train (late fusion) is only measured: its weights become best.pt."""
    if not run.main:
        return
    run.log("no trainable parameters (late fusion): evaluating and exporting only")
    logits = predict_logits(run.model, run.val_images, run.data).cpu()
    acc = float((logits.argmax(1).numpy() == run.val_ds.labels).mean())
    run.best = {"accuracy": acc, "epoch": 0}
    save_checkpoint(run.out / "best.pt", {"model": run.model.state_dict(), "best": run.best})
    truncate_csv(run.out / "metrics.csv", 0)


def _close(run: Run) -> None:
    if run.writer is not None:
        run.writer.close()
    if run.world > 1:
        dist.barrier()
        dist.destroy_process_group()
