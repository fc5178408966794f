"""Evaluate a model on a dataset of face crops, with the preprocessing its config asks for.

Labels are matched by name: samples whose class the model lacks are left out, classes the model has but the
dataset lacks are not predicted (the argmax runs over the shared classes), and both lists are reported.
"""
from __future__ import annotations

import numpy as np
import torch

from ..balance import offset
from ..data.datasets import ImageDataset
from ..labels import canonical_name
from ..preprocess import DataConfig, build_transform, map_inputs, resolve_data_config
from .metrics import classification_report


@torch.inference_mode()
def predict_logits(model, images: torch.Tensor, dc: DataConfig, tta_flip: bool | None = None, batch: int | None = None,
                   amp_dtype=None, channels_last: bool = False, progress: bool = False,
                   per_view: bool = False) -> torch.Tensor:
    """Logits for uint8 face crops on ``images.device``, preprocessed by the data config's transform (mean of
    original and flipped logits with test-time flip, default ``dc.tta_flip``; with ``per_view`` each view's
    logits, ``views x N x C``, the original first). No temperature."""
    from tqdm.auto import tqdm

    tta = dc.tta_flip if tta_flip is None else tta_flip
    transform = build_transform(dc)
    batch = batch or (256 if images.device.type == "cuda" else 32)
    was = model.training
    model.eval()
    out = []
    for i in tqdm(range(0, len(images), batch), disable=not progress, desc="evaluating", unit="batch"):
        views = []
        for flip in (False, True) if tta else (False,):
            x = transform(images[i:i + batch], flip)
            if channels_last:
                x = map_inputs(lambda v: v.contiguous(memory_format=torch.channels_last), x)
            with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                views.append(model(x).float())
        out.append(torch.stack(views))
    model.train(was)
    logits = torch.cat(out, 1)
    return logits if per_view else logits.mean(0)


def evaluate_model(model, ds: ImageDataset, *, tta_flip: bool | None = None, device="cpu", progress=False,
                   missing: str = "leave_out", settings=("accurate",)) -> dict:
    """Metrics of a loaded model (with ``pretrained_cfg``) on ``ds``, over the classes both share; with test-time
    flip also ``without_flip``: the accuracies of the original view alone, from the same forward passes. Each
    further reading in ``settings`` (``balanced``: :mod:`fer_core.balance`) is scored from the same logits, under
    its name."""
    dc = resolve_data_config(model)
    tta = dc.tta_flip if tta_flip is None else tta_flip
    images = torch.from_numpy(ds.images).to(device)
    views = predict_logits(model.to(device), images, dc, tta, progress=progress, per_view=True).cpu()
    names = list(model.pretrained_cfg["label_names"])

    def reading(logits, setting):
        shift = offset(model.pretrained_cfg, setting)
        return logits / dc.temperature - (0 if shift is None else shift)

    rep = score_by_name(names, reading(views.mean(0), settings[0]), ds, missing=missing)
    rep.update({"tta_flip": tta, "temperature": dc.temperature, "setting": settings[0]})
    if tta:
        plain = score_by_name(names, reading(views[0], settings[0]), ds, missing=missing)
        rep["without_flip"] = {k: plain[k] for k in ("accuracy", "balanced_accuracy")}
    for setting in settings[1:]:
        rep[setting] = score_by_name(names, reading(views.mean(0), setting), ds, missing=missing)
    return rep


def late_fusion_baseline(fusion, ds: ImageDataset, *, device="cpu", progress=False, missing: str = "leave_out"):
    """The baseline a fusion must beat: the mean of its two branches' calibrated probabilities, each branch read as
    its own config says (input size, temperature, test-time flip), scored like :func:`evaluate_model`. None when
    a branch carries no config of its own (a fusion whose branches were not loaded from weights folders)."""
    branches = [getattr(fusion, "branch_a", None), getattr(fusion, "branch_b", None)]
    if not all(hasattr(b, "pretrained_cfg") for b in branches):
        return None
    names = list(branches[0].pretrained_cfg["label_names"])
    if list(branches[1].pretrained_cfg["label_names"]) != names:
        raise ValueError(f"the branches' classes differ: {names} and {branches[1].pretrained_cfg['label_names']}")
    images = torch.from_numpy(ds.images).to(device)
    probs = []
    for b in branches:
        dc = resolve_data_config(b)
        probs.append((predict_logits(b.to(device), images, dc, progress=progress).cpu() / dc.temperature).softmax(1))
    rep = score_by_name(names, torch.stack(probs).mean(0).log(), ds, missing=missing)
    rep["reading"] = "late fusion: the mean of the branches' calibrated probabilities"
    return rep


def score_by_name(model_names, logits: torch.Tensor, ds: ImageDataset, missing: str = "leave_out") -> dict:
    """Metrics of per-sample ``logits`` (or log-probabilities) over ``model_names`` against ``ds``'s labels,
    matched by name (any spelling: ``angry`` is anger). ``missing``: what happens to samples of a class the model lacks: ``leave_out`` (accuracy
    over the shared classes) or ``count_wrong`` (they stay, every prediction on them is wrong, and their class
    counts in the balanced accuracy with recall 0: how a peer without that class is compared fairly)."""
    if missing not in ("leave_out", "count_wrong"):
        raise ValueError(f"missing must be leave_out or count_wrong, got {missing!r}")
    model_names, data_names = [canonical_name(n) for n in model_names], list(ds.label_set.names)  # "happy" too
    shared = [n for n in model_names if n in data_names]
    if not shared:
        raise ValueError(f"the model's classes {model_names} and the dataset's {data_names} share none")
    cols = [model_names.index(n) for n in shared]
    true_names = [data_names[i] for i in ds.labels]
    probs = logits[:, cols].float().softmax(1).numpy()
    if missing == "leave_out":
        keep = np.array([n in shared for n in true_names])
        names, probs = shared, probs[keep]
        y = np.array([shared.index(n) for n, k in zip(true_names, keep) if k], dtype=np.int64)
    else:  # the dataset's classes the model lacks get a column of zeros: never predicted
        keep = np.ones(len(true_names), dtype=bool)
        names = shared + [n for n in data_names if n not in shared]
        probs = np.concatenate([probs, np.zeros((len(probs), len(names) - len(shared)), probs.dtype)], 1)
        y = np.array([names.index(n) for n in true_names], dtype=np.int64)
    rep = classification_report(y, probs, names)
    rep.update({
        "dataset": ds.name, "missing": missing,
        "classes_only_in_model": [n for n in model_names if n not in data_names],
        "classes_only_in_dataset": [n for n in data_names if n not in model_names],
        "n_left_out": int((~keep).sum()),
    })
    return rep
