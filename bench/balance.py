"""The balanced setting's trade-off: for each shipped weight, the strength of post-hoc logit adjustment
(fer_core/balance.py) chosen on the selection slice of FER+ train for each accuracy budget, and what that choice
reads on the slice and, once per choice, on FER+ valid: accuracy, balanced accuracy, contempt and disgust recall.

    python -m bench.balance --json out.json [--budgets 0.01,0.025]

Each weight's logits (flip-averaged, as the page reads) are computed once per split and kept in
``.data/logits/`` (named by the weight's sha256), so a rerun only re-scores. FER+ valid is never used to choose:
only each budget's choice is read there.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fer_core.balance import class_prior, fit_tau
from fer_core.data.cache import load_cache
from fer_core.data.holdout import only, read_list, without
from fer_core.preprocess import resolve_data_config
from fer_core.train.evaluation import predict_logits
from fer_core.weights import load_weights

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("ddamfn", "resnet_dda", "fusion")
RARE = ("contempt", "disgust", "fear")


def cached_logits(model, key: str, split: str, images: np.ndarray, cache: Path) -> torch.Tensor:
    """The weight's flip-averaged logits (no temperature) on ``images``, from ``cache`` when computed before."""
    sha = model.pretrained_cfg["files"]["model.safetensors"]["sha256"][:16]
    path = cache / f"{key}-{sha}-{split}.npy"
    if path.exists():
        return torch.from_numpy(np.load(path))
    t0 = time.perf_counter()
    logits = predict_logits(model, torch.from_numpy(images), resolve_data_config(model))
    print(f"{key} on {split}: {len(images)} faces in {time.perf_counter() - t0:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, logits.numpy())
    return logits


def scores(logits: torch.Tensor, labels: np.ndarray, names) -> dict:
    pred = logits.argmax(1).numpy()
    recall = {n: float((pred[labels == c] == c).mean()) for c, n in enumerate(names) if (labels == c).any()}
    return {"accuracy": float((pred == labels).mean()), "balanced_accuracy": float(np.mean(list(recall.values()))),
            **{f"{n}_recall": recall[n] for n in RARE}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--data", default=str(ROOT / ".data/ferplus.npz.xz"),
                    help="FER+ as train_scripts/prepare_data.py caches it (train and valid, majority labels)")
    ap.add_argument("--budgets", default="0.01,0.025", help="accuracy the balanced reading may lose on the slice")
    ap.add_argument("--cache", default=str(ROOT / ".data/logits"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one beside a training run)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    splits = load_cache(a.data)
    path, names = read_list("ferplus")
    held, rest = only(splits["train"], names, path.name), without(splits["train"], names, path.name)
    valid = splits["valid"]
    labels = list(valid.label_set.names)
    prior = class_prior(rest.labels, len(labels))
    log_prior = torch.log(torch.tensor(prior, dtype=torch.float32))
    res = {"date": time.strftime("%Y-%m-%d"), "slice": len(held), "valid": len(valid),
           "prior": [round(float(p), 6) for p in prior], "models": {}}
    for key in MODELS:
        model = load_weights(Path(a.weights_dir) / key)
        if list(model.pretrained_cfg["label_names"]) != labels:
            raise SystemExit(f"{key}: its classes are not the data's, in the same order")
        t = resolve_data_config(model).temperature
        sl = cached_logits(model, key, "slice", held.images, Path(a.cache)) / t
        va = cached_logits(model, key, "valid", valid.images, Path(a.cache)) / t
        row = {"unadjusted": {"slice": scores(sl, held.labels, labels), "valid": scores(va, valid.labels, labels)},
               "shipped_tau": (model.pretrained_cfg.get("balanced") or {}).get("tau"), "budgets": {}}
        for budget in (float(b) for b in a.budgets.split(",")):
            fit = fit_tau(sl, held.labels, prior, budget)
            tau = fit["tau"]
            row["budgets"][str(budget)] = {"tau": tau, "slice": scores(sl - tau * log_prior, held.labels, labels),
                                           "valid": scores(va - tau * log_prior, valid.labels, labels),
                                           "slice_curve": fit["tried"]}
        res["models"][key] = row
        print(key, json.dumps({b: {k: v for k, v in r.items() if k != "slice_curve"}
                               for b, r in row["budgets"].items()}), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
