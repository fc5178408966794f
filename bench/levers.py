"""The training levers against the shipped weights, on the selection slice of FER+ train (where the trainer chooses
its epoch; FER+ valid is read once, and only for a run that beats the shipped weights there, or for a refit).

    python -m bench.levers --run "mixup / cutmix=resnet_dda:RUN_DIR" [--run ...] --json out.json

Each ``--run LABEL=SHIPPED:RUN_DIR`` names a run folder of ``train_scripts/train.py`` (its ``metrics.csv``,
``train_config.json`` and, once it ended, ``export/config.json``) and the shipped weight it would replace
(``ddamfn``, ``resnet_dda`` or ``fusion`` under ``--weights-dir``). A run still going is read as far as it got.
The baseline is the shipped weight's own selection-slice accuracy, from its ``config.json``; a run ships only if
it gains at least 0.3 point there and then on FER+ valid.

A refit (``train.py --refit WEIGHTS``) trains on the slice too, so the slice cannot judge it: it ends at the epoch
the refitted run chose and is judged by FER+ valid alone, against the shipped weight's figure. FER+ valid is read
once per finished candidate, by ``fer-evaluate --model RUN_DIR/export --dataset ferplus --split valid --json
RUN_DIR/ferplus_valid.json``; this bench reads that file, never the images.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from bench.timing import ROOT, emit

GAIN = 0.003  # the least gain on FER+ valid that replaces a shipped weight


def shipped_config(weights_dir: Path, name: str) -> dict:
    return json.loads((weights_dir / name / "config.json").read_text())


def shipped_slice(weights_dir: Path, name: str) -> dict:
    return shipped_config(weights_dir, name)["metrics"]["training"]["validation"]


def refit_epoch(run: Path, refit: str) -> int:
    """The epoch a refit ends at: the one its refitted run chose, from the run's export once written (what it
    refitted, as the trainer read it); before, from the refitted weights' card, the path ``--refit`` gave (the
    trainer's directory is not recorded: tried from here, then from the repository root)."""
    export = run / "export" / "config.json"
    if export.is_file():
        return int(json.loads(export.read_text())["provenance"]["refit_of"]["epoch"])
    for folder in dict.fromkeys((Path(refit), ROOT / refit)):
        if (folder / "config.json").is_file():
            return int(json.loads((folder / "config.json").read_text())["provenance"]["best_epoch"])
    raise SystemExit(f"{run}: a refit of {refit}, which is found neither here nor under {ROOT}: run this bench "
                     "from the directory it trained in, or once its export is written")


def valid_reading(run: Path) -> float | None:
    """The run's FER+ valid accuracy from ``RUN_DIR/ferplus_valid.json`` (fer-evaluate's report): refused when it
    is of another split or model, or older than the run's export (a reading of an earlier export)."""
    path, export = run / "ferplus_valid.json", run / "export" / "config.json"
    if not path.is_file():
        return None
    rep = json.loads(path.read_text())
    model = Path(str(rep.get("model", "")))
    if rep.get("split") != "valid" or model.parts[-2:] != (run.name, "export"):
        raise SystemExit(f"{path}: a reading of {rep.get('model')!r} on split {rep.get('split')!r}, not of "
                         f"{run / 'export'} on FER+ valid")
    if export.is_file() and export.stat().st_mtime > path.stat().st_mtime:
        raise SystemExit(f"{path} is older than {export}: read FER+ valid again for this export")
    return float(rep["accuracy"])


def read_run(run: Path) -> dict:
    """A run folder's best epoch on the slice (a refit's last), how far it got, its training time and, once read,
    its FER+ valid accuracy."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{run}: no epoch finished yet (metrics.csv is empty)")
    cfg = json.loads((run / "train_config.json").read_text())
    refit = cfg.get("refit") or None
    best = rows[-1] if refit else max(rows, key=lambda r: (float(r["val_acc"]), float(r["val_bacc"])))
    return {"run": run.name, "model": cfg["model"], "input_size": cfg["input_size"],
            "epochs": refit_epoch(run, refit) if refit else cfg["epochs"], "refit": refit,
            "epochs_done": int(rows[-1]["epoch"]), "best_epoch": int(best["epoch"]),
            "slice_accuracy": float(best["val_acc"]), "slice_balanced": float(best["val_bacc"]),
            "train_hours": float(rows[-1]["elapsed_s"]) / 3600, "threads": cfg["threads"],
            "by_epoch": [round(float(r["val_acc"]) * 100, 1) for r in rows],
            "exported": (run / "export" / "config.json").is_file(),
            "ferplus_valid": valid_reading(run)}


def judged_on_valid(r: dict, base_valid: float) -> tuple[str, str]:
    """The points and the verdict of a run read on FER+ valid (or waiting for that reading)."""
    if r["ferplus_valid"] is None:
        return "", "ended: read FER+ valid once (fer-evaluate ... --json RUN_DIR/ferplus_valid.json)"
    delta = (r["ferplus_valid"] - base_valid) * 100
    verdict = "ships" if delta >= GAIN * 100 - 1e-9 else "not shipped"
    return f"**{delta:+.2f}** on FER+ valid", (f"FER+ valid {r['ferplus_valid'] * 100:.2f}% against "
                                              f"{base_valid * 100:.2f}%: {verdict}")


def row(label: str, shipped: str, r: dict, base: dict, base_valid: float) -> list[str]:
    """The table's row of one run against the shipped weight (``base``: its slice figures; ``base_valid``: its FER+
    valid accuracy)."""
    done = r["epochs_done"] >= r["epochs"]
    delta = (r["slice_accuracy"] - base["accuracy"]) * 100
    candidate = delta >= GAIN * 100 - 1e-9  # the tolerance: a gain of 0.3 as printed is enough
    points, seen = f"**{delta:+.2f}**", f"{r['slice_accuracy'] * 100:.2f}% (epoch {r['best_epoch']}; balanced " \
                                       f"{r['slice_balanced'] * 100:.2f}%)"
    if r["refit"]:
        points, seen = "", f"trained on (a refit of {r['refit']}, ends at epoch {r['epochs']})"
        verdict = "running: judged on FER+ valid once it ends"
    elif not done:
        verdict = "running" + (", ahead" if delta > 0 else ", behind") + " so far"
    else:
        verdict = "a candidate: read FER+ valid once" if candidate else "not shipped"
    if done and (r["refit"] or (candidate and r["ferplus_valid"] is not None)):  # only a slice candidate is read
        valid_points, verdict = judged_on_valid(r, base_valid)
        points = " / ".join(x for x in (points, valid_points) if x)
    return [label, f"{r['model']} at {r['input_size']} px", f"{r['epochs_done']} of {r['epochs']}",
            f"{r['train_hours']:.1f} h ({r['threads']} thread{'s' * (r['threads'] > 1)})", seen,
            f"{base['accuracy'] * 100:.2f}% ({shipped})", points or "-", verdict]


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
        r, cfg = read_run(Path(run)), shipped_config(a.weights_dir, shipped)
        base, base_valid = cfg["metrics"]["training"]["validation"], cfg["metrics"]["ferplus_valid"]["accuracy"]
        rows.append(row(label, shipped, r, base, base_valid))
        raw[label] = {**r, "shipped": shipped, "shipped_slice_accuracy": base["accuracy"],
                      "shipped_ferplus_valid": base_valid}
    columns = ["lever", "model", "epochs", "training", "slice, best epoch", "shipped, slice", "points", "verdict"]
    emit({"date": time.strftime("%Y-%m-%d"), "columns": columns, "rows": rows, "runs": raw}, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
