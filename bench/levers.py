"""The training levers against the shipped weights, on the selection slice of FER+ train (where the trainer chooses
its epoch; FER+ valid is read once, and only for a run that beats the shipped weights here).

    python -m bench.levers --run "mixup / cutmix=resnet_dda:RUN_DIR" [--run ...] --json out.json

Each ``--run LABEL=SHIPPED:RUN_DIR`` names a run folder of ``train_scripts/train.py`` (its ``metrics.csv``,
``train_config.json`` and, once it ended, ``export/config.json``) and the shipped weight it would replace
(``ddamfn``, ``resnet_dda`` or ``fusion`` under ``--weights-dir``). A run still going is read as far as it got.
The baseline is the shipped weight's own selection-slice accuracy, from its ``config.json``; a run ships only if
it gains at least 0.3 point there and then on FER+ valid.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from bench.timing import ROOT, emit

GAIN = 0.003  # the least gain on FER+ valid that replaces a shipped weight


def shipped_slice(weights_dir: Path, name: str) -> dict:
    cfg = json.loads((weights_dir / name / "config.json").read_text())
    return cfg["metrics"]["training"]["validation"]


def read_run(run: Path) -> dict:
    """A run folder's best epoch on the slice, how far it got, and its training time."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{run}: no epoch finished yet (metrics.csv is empty)")
    cfg = json.loads((run / "train_config.json").read_text())
    best = max(rows, key=lambda r: (float(r["val_acc"]), float(r["val_bacc"])))
    export = run / "export" / "config.json"
    return {"run": run.name, "model": cfg["model"], "input_size": cfg["input_size"], "epochs": cfg["epochs"],
            "epochs_done": int(rows[-1]["epoch"]), "best_epoch": int(best["epoch"]),
            "slice_accuracy": float(best["val_acc"]), "slice_balanced": float(best["val_bacc"]),
            "train_hours": float(rows[-1]["elapsed_s"]) / 3600, "threads": cfg["threads"],
            "by_epoch": [round(float(r["val_acc"]) * 100, 1) for r in rows], "exported": export.is_file()}


def row(label: str, shipped: str, r: dict, base: dict) -> list[str]:
    delta = (r["slice_accuracy"] - base["accuracy"]) * 100
    done = r["epochs_done"] >= r["epochs"]
    verdict = ("a candidate: read FER+ valid once" if delta >= GAIN * 100 else "not shipped") if done else \
        ("running" + (", ahead" if delta > 0 else ", behind") + " so far")
    return [label, f"{r['model']} at {r['input_size']} px", f"{r['epochs_done']} of {r['epochs']}",
            f"{r['train_hours']:.1f} h ({r['threads']} thread{'s' * (r['threads'] > 1)})",
            f"{r['slice_accuracy'] * 100:.2f}% (epoch {r['best_epoch']}; balanced {r['slice_balanced'] * 100:.2f}%)",
            f"{base['accuracy'] * 100:.2f}% ({shipped})", f"**{delta:+.2f}**", verdict]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=SHIPPED:RUN_DIR")
    ap.add_argument("--weights-dir", type=Path, default=ROOT / "weights")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    rows, raw = [], {}
    for spec in a.run:
        label, _, rest = spec.partition("=")
        shipped, _, run = rest.partition(":")
        if not (label and shipped and run):
            ap.error(f"--run {spec!r}: expected LABEL=SHIPPED:RUN_DIR")
        r, base = read_run(Path(run)), shipped_slice(a.weights_dir, shipped)
        rows.append(row(label, shipped, r, base))
        raw[label] = {**r, "shipped": shipped, "shipped_slice_accuracy": base["accuracy"]}
    columns = ["lever", "model", "epochs", "training", "slice, best epoch", "shipped, slice", "points", "verdict"]
    emit({"date": time.strftime("%Y-%m-%d"), "columns": columns, "rows": rows, "runs": raw}, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
