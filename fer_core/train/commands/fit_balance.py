"""Fit the balanced reading of a weight (post-hoc logit adjustment, fer_core/balance.py) on FER+'s selection
slice of train, and record it in the weight's config.json.

    python train_scripts/fit_balance.py weights/resnet_dda --data cache:.data/ferplus.npz.xz --select ferplus

The prior is the class frequencies of the training split without the slice (majority labels); the strength
``tau`` is the one with the highest balanced accuracy on the slice among those that lose at most
``--max-loss`` accuracy there. FER+ valid is not read. The tensors are not touched; the config's sha256 changes
(for a shipped weight, re-pin it: `python train_scripts/pin.py`).

With ``--measure``, the setting chosen is then read once on the evaluations train_scripts/export.py records
(FER+ valid, FER2013 val: ``metrics.<key>_balanced``, beside the accurate reading's figures, which are measured
again and must agree), and the card is rendered again, so that it states what the setting costs:

    python train_scripts/fit_balance.py weights/fusion --measure
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fer_core.balance import MAX_LOSS, class_prior, fit_tau
from fer_core.card import render_model_card
from fer_core.data import dataset_root, read_dataset
from fer_core.data.holdout import only, read_list, without
from fer_core.files import write_text_atomic
from fer_core.preprocess import resolve_data_config
from fer_core.train.commands.export import EVALUATIONS
from fer_core.train.evaluation import evaluate_model, predict_logits
from fer_core.train.metrics import summarize
from fer_core.train.setup import _read_split
from fer_core.weights import load_weights, read_config, write_config


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", help="a weights folder")
    ap.add_argument("--data", default="cache:.data/ferplus.npz.xz", help="KIND:PATH or cache:FILE with a train split")
    ap.add_argument("--select", default="ferplus", help="the selection slice of train")
    ap.add_argument("--max-loss", type=float, default=MAX_LOSS,
                    help=f"accuracy the balanced reading may lose on the slice (default {MAX_LOSS})")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--measure", action="store_true",
                    help="read the setting chosen on FER+ valid and FER2013 val, record it, render the card again")
    ap.add_argument("--ferplus", default=str(dataset_root("ferplus")),
                    help="FER+ root (FER2013Valid/ inside; default: $FER_DATA/ferplus)")
    ap.add_argument("--fer2013", default=str(dataset_root("fer2013")),
                    help="FER2013 class folders (val/ inside; default: $FER_DATA/fer2013)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    path, names = read_list(a.select)
    train = _read_split(a.data, "train", "majority")
    held, rest = only(train, names, path.name), without(train, names, path.name)
    model = load_weights(a.weights)
    dc = resolve_data_config(model)
    logits = predict_logits(model, torch.from_numpy(held.images), dc, progress=True) / dc.temperature
    if list(model.pretrained_cfg["label_names"]) != list(held.label_set.names):
        raise SystemExit("the weight's classes are not the data's, in the same order")
    prior = class_prior(rest.labels, len(rest.label_set))
    fit = fit_tau(logits, held.labels, prior, a.max_loss, names=list(held.label_set.names))
    config = read_config(Path(a.weights) / "config.json")
    config["balanced"] = {"tau": fit["tau"], "prior": [round(float(p), 6) for p in prior],
                          "chosen_on": f"{a.data} train: {path.name} ({len(held)} images); prior: the rest of train",
                          "max_accuracy_loss": a.max_loss, "selection": fit["selection"],
                          "selection_unadjusted": fit["unadjusted"]}
    write_config(a.weights, config)
    s, u = fit["selection"], fit["unadjusted"]
    print(f"tau {fit['tau']}: on the slice accuracy {s['accuracy']:.4f} (unadjusted {u['accuracy']:.4f}), balanced "
          f"{s['balanced_accuracy']:.4f} (unadjusted {u['balanced_accuracy']:.4f}); written to {a.weights}/config.json")
    if a.measure:
        measure(a.weights, {"ferplus": a.ferplus, "fer2013": a.fer2013})
    return fit


def measure(folder, data_roots: dict, tolerance: float = 0.002) -> dict:
    """Read ``folder``'s balanced setting once on each evaluation export.py records (where the data is), record it
    as ``metrics.<key>_balanced`` and render the card again. The accurate reading is measured from the same
    logits and must agree with the recorded figure within ``tolerance`` (the same weight, the same faces)."""
    model = load_weights(folder)
    config = read_config(Path(folder) / "config.json")
    for key, kind, split, title in EVALUATIONS:
        if key not in config.get("metrics", {}):
            continue  # not evaluated at export: nothing to stand beside
        root = data_roots.get(kind)
        if root is None or not Path(root).exists():  # its balanced figures would stay those of the old setting
            raise SystemExit(f"{title}: no data at {root} (--ferplus, --fer2013)")
        rep = evaluate_model(model, read_dataset(kind, root, split), settings=("accurate", "balanced"))
        recorded = config["metrics"][key]["accuracy"]
        if abs(rep["accuracy"] - recorded) > tolerance:
            raise SystemExit(f"{title}: the accurate reading reads {rep['accuracy']:.4f}, the config {recorded:.4f}")
        config["metrics"][f"{key}_balanced"] = summarize(rep["balanced"])
        b = rep["balanced"]
        print(f"{title}, balanced setting: accuracy {b['accuracy']:.4f} (accurate {rep['accuracy']:.4f}), balanced "
              f"{b['balanced_accuracy']:.4f} ({rep['balanced_accuracy']:.4f})", flush=True)
    write_config(folder, config)
    write_text_atomic(Path(folder) / "README.md",
                      render_model_card(config, images=sorted(p.name for p in Path(folder).glob("*.png"))))
    return config


def cli() -> int:
    """The console command: ``main`` without its returned figures (they are printed and written)."""
    main()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
