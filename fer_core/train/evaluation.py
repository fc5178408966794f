"""Evaluate a model on a dataset of face crops, with the preprocessing its config asks for.

Labels are matched by name: samples whose class the model lacks are left out, classes the model has but the
dataset lacks are not predicted (the argmax runs over the shared classes), and both lists are reported.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.augment import eval_transform
from ..data.datasets import ImageDataset
from ..models.registry import IMAGENET_MEAN, IMAGENET_STD
from .metrics import classification_report


@torch.inference_mode()
def predict_logits(model, images: torch.Tensor, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   tta_flip: bool = False, batch: int | None = None, amp_dtype=None, channels_last: bool = False,
                   progress: bool = False) -> torch.Tensor:
    """Logits for uint8 face crops on ``images.device`` (mean of original and flipped logits when ``tta_flip``)."""
    from tqdm.auto import tqdm

    batch = batch or (256 if images.device.type == "cuda" else 32)
    was = model.training
    model.eval()
    out = []
    for i in tqdm(range(0, len(images), batch), disable=not progress, desc="evaluating", unit="batch"):
        acc = 0
        views = (False, True) if tta_flip else (False,)
        for flip in views:
            x = eval_transform(images[i:i + batch], size, mean, std, flip)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                acc = acc + model(x).float()
        out.append(acc / len(views))
    model.train(was)
    return torch.cat(out)


def evaluate_model(model, ds: ImageDataset, *, tta_flip: bool | None = None, device="cpu", progress=False) -> dict:
    """Metrics of a loaded model (with ``pretrained_cfg``) on ``ds``, over the classes both share."""
    cfg = model.pretrained_cfg
    model_names = list(cfg["label_names"])
    data_names = list(ds.label_set.names)
    shared = [n for n in model_names if n in data_names]
    if not shared:
        raise ValueError(f"the model's classes {model_names} and the dataset's {data_names} share none")
    tta = cfg.get("tta_flip", False) if tta_flip is None else tta_flip
    images = torch.from_numpy(ds.images).to(device)
    logits = predict_logits(model.to(device), images, cfg["input_size"][1], cfg["mean"], cfg["std"], tta,
                            progress=progress).cpu()
    logits = logits / float(cfg.get("temperature", 1.0))
    cols = [model_names.index(n) for n in shared]
    true_names = [data_names[i] for i in ds.labels]
    keep = np.array([n in shared for n in true_names])
    y = np.array([shared.index(n) for n, k in zip(true_names, keep) if k], dtype=np.int64)
    probs = logits[torch.from_numpy(keep)][:, cols].softmax(1).numpy()
    rep = classification_report(y, probs, shared)
    rep.update({
        "dataset": ds.name, "tta_flip": tta, "temperature": float(cfg.get("temperature", 1.0)),
        "classes_only_in_model": [n for n in model_names if n not in data_names],
        "classes_only_in_dataset": [n for n in data_names if n not in model_names],
        "n_left_out": int((~keep).sum()),
    })
    return rep
