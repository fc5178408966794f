"""The end of a run: the best weights, a temperature fitted on the selection split, plots, and an export folder
(safetensors + config.json with provenance and metrics) that ``load_pretrained`` and ``train_scripts/export.py``
take. Also what ``--export-only`` runs on a run that is still going or was stopped."""
from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from ..hardware import device_description
from ..options import command_line
from ..plots import plot_confusion, plot_curves
from ..weights import build_config, load_pretrained, save_pretrained
from .checkpoint import load_checkpoint
from .evaluation import predict_logits
from .metrics import classification_report, expected_calibration_error, fit_temperature, summarize
from .state import Run


def finish(run: Run, argv=None) -> dict:
    """Load RUN/best.pt, fit the temperature, write val_report.json, curves.png, confusion.png and export/."""
    cfg, out = run.cfg, run.out
    if not (out / "best.pt").exists():
        raise FileNotFoundError(f"{out / 'best.pt'}: no best checkpoint yet (it is written after the first epoch)")
    best = load_checkpoint(out / "best.pt", run.device)
    model = run.model
    model.load_state_dict({k.removeprefix("module."): v for k, v in best["model"].items() if k != "n_averaged"})
    logits = predict_logits(model, run.val_images, run.data,
                            amp_dtype=run.amp_dtype, channels_last=cfg.channels_last).cpu()
    labels = run.train_ds.label_set
    # a refit has no faces it did not train on: it keeps the temperature of the run it refits
    temperature = (run.refit["temperature"] if run.refit
                   else fit_temperature(logits, torch.from_numpy(run.val_ds.labels)))
    rep = classification_report(run.val_ds.labels, (logits / temperature).softmax(1).numpy(), labels.names)
    rep["ece_before_temperature"] = expected_calibration_error(logits.softmax(1).numpy(), run.val_ds.labels)
    rep["temperature"] = temperature
    (out / "val_report.json").write_text(json.dumps(rep, indent=2))
    plot_curves(out / "metrics.csv", out / "curves.png")
    plot_confusion(rep["confusion_matrix"], labels.names, out / "confusion.png",
                   f"{cfg.model} on {cfg.val_split}: acc {rep['accuracy']:.4f}")
    model.cpu().to(memory_format=torch.contiguous_format)
    dc = run.data
    config = build_config(model, label_set=labels, input_size=(3, dc.input_size, dc.input_size), mean=dc.mean,
                          std=dc.std, grayscale=dc.crop.grayscale, crop=dc.crop.to_config(),
                          temperature=temperature, tta_flip=cfg.tta_flip, provenance=provenance(run, best, argv),
                          # the selection split, float32, after temperature (a refit trained on it: not recorded)
                          metrics={} if run.refit else {"validation": summarize(rep)})
    if run.refit and run.refit.get("balanced"):
        config["balanced"] = run.refit["balanced"]
    export = save_pretrained(model, out / "export", config, storage=cfg.export_storage)
    print(f"best epoch {best['best']['epoch']}: val acc {rep['accuracy']:.4f} (balanced "
          f"{rep['balanced_accuracy']:.4f}), temperature {temperature:.3f}; exported to {export}", flush=True)
    return {"export": str(export), "val_report": rep}


def provenance(run: Run, best: dict, argv=None) -> dict:
    """How the weights were made, for config.json and the model card."""
    cfg = run.cfg
    rows = list(csv.DictReader(open(run.out / "metrics.csv"))) if (run.out / "metrics.csv").exists() else []
    best_epoch = best["best"]["epoch"]
    at_best = next((r for r in rows if int(r["epoch"]) == best_epoch), None)
    kind, _, path = cfg.data.partition(":")
    argv = list(argv if argv is not None else sys.argv)
    invoked = " ".join(argv)
    if cfg.export_only or cfg.resume:  # the command that trains this run from the start, flag for flag
        flags = command_line(cfg, skip=("export_only", "resume"))
        command = " ".join(argv[:1] + [shlex.quote(f) for f in flags])
    else:
        command = invoked
    return {
        "command": command, **({"exported_by": invoked} if command != invoked else {}),
        "commit": git_commit(),
        "dataset": kind if kind != "cache" else "cache:" + Path(path).name,
        "protocol": cfg.protocol, "train_split": cfg.train_split + (f" without {cfg.select}" if cfg.select else ""),
        "selection_split": f"{cfg.train_split}: {cfg.select}" if cfg.select else cfg.val_split,
        **({"refit_of": {k: run.refit[k] for k in ("weights", "sha256", "epoch")},
            "train_split": f"{cfg.train_split} (the selection slice {cfg.select} included)",
            "selection_split": f"none: the epoch, temperature and balanced setting of {run.refit['weights']}"}
           if run.refit else {}),
        "selection_protocol": cfg.val_protocol,
        **({"distillation": {**_teachers(cfg.distill), "weight": cfg.distill_weight}} if cfg.distill else {}),
        "seed": cfg.seed, "epochs": cfg.epochs, "epochs_completed": len(rows), "best_epoch": best_epoch,
        "device": device_description(run.device), "precision": run.amp,
        # wall time to the shipped (best) epoch, and of the whole run so far, across stops and resumes
        "wall_time_s": round(float(at_best["elapsed_s"]) if at_best else run.elapsed(), 1),
        "run_wall_time_s": round(float(rows[-1]["elapsed_s"]) if rows else run.elapsed(), 1),
        "init": _init_note(cfg),
        **({"init_provenance": _init_provenance(cfg.init_from)} if cfg.init_from and cfg.model != "fusion" else {}),
    }


def _teachers(path: str) -> dict:
    """The teachers a distillation file names, and the command that made it (files from before it was recorded
    have none)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        made_by = {"made_by": str(z["command"])} if "command" in z.files and str(z["command"]) else {}
        return {"teachers": [str(t) for t in z["teachers"]], **made_by}


def _init_provenance(weights: str) -> dict:
    """What a warm start began from, copied into the new provenance so that the chain survives when the folder it
    names is later overwritten (as the shipped weights are): their weights' sha256, how they were made, and what
    they measured on the selection split. Read at export time, from the folder as it is then."""
    config = load_pretrained(weights).pretrained_cfg
    metrics = config.get("metrics", {})  # a run's export, or train_scripts/export.py's (which nests it)
    validation = metrics.get("training", metrics).get("validation", {})
    return {"weights": weights, "files": config.get("files", {}), "provenance": config.get("provenance", {}),
            "selection_accuracy": validation.get("accuracy"),
            "selection_balanced_accuracy": validation.get("balanced_accuracy")}


def _init_note(cfg) -> str:
    if cfg.model == "fusion":
        how = "fine-tuned jointly" if cfg.joint else "frozen"
        return f"branches from {cfg.branch_a} and {cfg.branch_b}, {how}"
    if cfg.init_from:
        return f"warm start from {cfg.init_from} (see its own provenance), fresh schedule"
    return "from scratch (no pretrained backbone)"


def git_commit() -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it."""
    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
