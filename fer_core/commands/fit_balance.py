"""Fit the balanced reading of a weight (post-hoc logit adjustment, fer_core/balance.py) on FER+'s selection
slice of train, and record it in the weight's config.json.

    python train_scripts/fit_balance.py weights/resnet_dda --data cache:.data/ferplus.npz.xz --select ferplus

The prior is the class frequencies of the training split without the slice (majority labels); the strength
``tau`` is the one with the highest balanced accuracy on the slice among those that lose at most
``--max-loss`` accuracy there. FER+ valid is not read. The tensors are not touched; the config's sha256 changes
(for a shipped weight, re-pin it: `python train_scripts/pin.py`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fer_core.balance import class_prior, fit_tau
from fer_core.data.holdout import only, read_list, without
from fer_core.preprocess import resolve_data_config
from fer_core.train.evaluation import predict_logits
from fer_core.train.setup import _read_split
from fer_core.weights import load_weights, read_config, write_config


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", help="a weights folder")
    ap.add_argument("--data", default="cache:.data/ferplus.npz.xz", help="KIND:PATH or cache:FILE with a train split")
    ap.add_argument("--select", default="ferplus", help="the selection slice of train")
    ap.add_argument("--max-loss", type=float, default=0.01, help="accuracy the balanced reading may lose")
    ap.add_argument("--threads", type=int, default=0)
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
    fit = fit_tau(logits, held.labels, prior, a.max_loss)
    config = read_config(Path(a.weights) / "config.json")
    config["balanced"] = {"tau": fit["tau"], "prior": [round(float(p), 6) for p in prior],
                          "chosen_on": f"{a.data} train: {path.name} ({len(held)} images); prior: the rest of train",
                          "max_accuracy_loss": a.max_loss, "selection": fit["selection"],
                          "selection_unadjusted": fit["tried"][0]}
    write_config(a.weights, config)
    s, u = fit["selection"], fit["tried"][0]
    print(f"tau {fit['tau']}: on the slice accuracy {s['accuracy']:.4f} (unadjusted {u['accuracy']:.4f}), balanced "
          f"{s['balanced_accuracy']:.4f} (unadjusted {u['balanced_accuracy']:.4f}); written to {a.weights}/config.json")
    return fit


def cli() -> int:
    """The console command: ``main`` without its returned figures (they are printed and written)."""
    main()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
