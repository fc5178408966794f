"""Training checkpoints: atomic writes (temp file, fsync, rename), safe reads (``weights_only=True``), and resuming a
run from its last checkpoint when it was written by the same recipe on the same data."""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..files import atomic_output
from .state import Run

METRIC_FIELDS = ["epoch", "step", "train_loss", "train_acc", "val_acc", "val_bacc", "lr", "img_per_s", "elapsed_s"]


def save_checkpoint(path, state: dict):
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path, device="cpu") -> dict:
    # Only tensors, numbers, strings and containers are stored: no pickled code is accepted.
    return torch.load(path, map_location=device, weights_only=True)


# flags that may differ when a run is resumed: how it runs and where its files are, not what it learns (the data
# and the teachers' file are compared by content, so that a moved file resumes and a changed one does not)
RESUME_MAY_CHANGE = ("threads", "compile", "resume", "export_only", "save_every", "log_every", "out_dir", "runs_dir",
                     "name", "export_storage", "data", "val_data", "distill")


def data_digest(run: Run) -> str:
    """sha256 (16 hex digits) of what a run learns from and is chosen on: the training images, their targets (the
    labels mixed with the teachers' probabilities) and the selection split's images and labels."""
    if not run.data_digest:
        h = hashlib.sha256()
        for t in (run.images, run.targets, run.val_images, torch.as_tensor(run.val_ds.labels)):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        run.data_digest = h.hexdigest()[:16]
    return run.data_digest


def check_resumable(run: Run, ck: dict, path: Path) -> None:
    """Refuse a checkpoint made with another recipe or other data: resuming it would silently change what the run
    learns half-way (checkpoints from before these were recorded are taken as they are)."""
    diffs = []
    if ck.get("config"):
        then, now = json.loads(ck["config"]), json.loads(json.dumps(asdict(run.cfg), default=str))
        diffs = [f"--{k.replace('_', '-')}: {then[k]!r} then, {now[k]!r} now" for k in then
                 if k in now and k not in RESUME_MAY_CHANGE and then[k] != now[k]]
    if ck.get("data_digest") and ck["data_digest"] != data_digest(run):
        diffs.append("the training images, their targets (labels, and the teachers' probabilities with --distill) or "
                     "the selection split differ from those it began with")
    if diffs:
        raise ValueError(f"{path} was written by another run: " + "; ".join(diffs) + ". Resume with the run's own "
                         f"flags ({run.out / 'train_config.json'}), or start a new run (--name; --init-from to "
                         "warm-start from its weights).")


def resume(run: Run) -> None:
    """Continue from RUN/last.pt when ``--resume`` (a missing checkpoint starts fresh, and says so), if it was
    written by the same recipe on the same data (:func:`check_resumable`)."""
    ckpt_path = run.out / "last.pt"
    if run.cfg.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, run.device)
        check_resumable(run, ck, ckpt_path)
        run.model.load_state_dict(ck["model"])
        run.optimizer.load_state_dict(ck["optimizer"])
        run.scheduler.load_state_dict(ck["scheduler"])
        run.scaler.load_state_dict(ck["scaler"])
        if run.ema is not None and ck.get("ema") is not None:
            run.ema.load_state_dict(ck["ema"])
        run.epoch, run.step, run.best, run.csv_rows = ck["epoch"], ck["step"], ck["best"], ck["csv_rows"]
        run.resumed_stats = ck.get("epoch_stats")
        run.elapsed_before = ck.get("elapsed_s", _logged_elapsed(run.out / "metrics.csv", run.csv_rows))
        torch.set_rng_state(ck["rng"]["torch"])
        run.log(f"resumed from {ckpt_path}: epoch {run.epoch}, step {run.step}")
    elif run.cfg.resume:
        run.log(f"--resume: no checkpoint at {ckpt_path}, starting fresh")
    if run.main:
        truncate_csv(run.out / "metrics.csv", run.csv_rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            run.writer = SummaryWriter(str(run.out / "tb"))
        except ImportError:
            run.log("tensorboard not installed: no TensorBoard scalars")
        (run.out / "train_config.json").write_text(json.dumps(asdict(run.cfg), indent=2, default=str))


def truncate_csv(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` rows (a killed run may have logged past its last checkpoint)."""
    old = list(csv.DictReader(open(path))) if path.exists() else []
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, METRIC_FIELDS)
        w.writeheader()
        w.writerows(old[:rows])


def _logged_elapsed(path: Path, rows: int) -> float:
    """Wall time the run had logged by its checkpoint (checkpoints written before ``elapsed_s`` was kept)."""
    if not path.exists() or rows < 1:
        return 0.0
    kept = list(csv.DictReader(open(path)))[:rows]
    return float(kept[-1]["elapsed_s"]) if kept else 0.0
