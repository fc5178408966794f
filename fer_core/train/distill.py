"""Distillation targets: the calibrated, flip-averaged probabilities of an ensemble of trained models (the
teachers) on every training image, computed once (``train_scripts/teach.py``) and mixed into a run's targets
(``--distill FILE --distill-weight W``: target = (1 - W) x labels + W x teachers).

Precomputing on the unaugmented images is what makes this affordable on a CPU (no teacher forward per step);
the student sees them flipped, slightly rotated, scaled and shifted, transformations under which the teachers'
flip-averaged reading is meant not to change. The file holds image names, not images: the targets are matched to
the training split by name, and a training image without a teacher entry is an error.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_output
from ..preprocess import resolve_data_config
from .evaluation import predict_logits


@torch.inference_mode()
def teacher_probabilities(models, images: torch.Tensor, progress: bool = True) -> np.ndarray:
    """Mean over ``models`` (loaded weights with ``pretrained_cfg``) of each one's calibrated probabilities,
    with the test-time flip its config asks for."""
    probs = []
    for m in models:
        dc = resolve_data_config(m)
        logits = predict_logits(m, images, dc, progress=progress)
        probs.append((logits.float() / dc.temperature).softmax(1))
    return torch.stack(probs).mean(0).numpy().astype(np.float32)


def read_probabilities(models, images: np.ndarray, engine: str = "auto", batch: int = 256,
                       progress: bool = True) -> np.ndarray:
    """:func:`teacher_probabilities` read the page's way (:meth:`fer_core.predict.Analyzer.read`: ONNX Runtime
    with the two branches side by side where ``engine`` allows, a fusion on the same branches' outputs), the
    same probabilities to ONNX Runtime's rounding (logits equal to torch's to 1e-3, tested) in a fraction of the
    time on a CPU. ``models`` loaded with shared branches (``load_pretrained(..., reuse=...)``) read each branch
    once."""
    from tqdm.auto import tqdm

    from ..predict import Analyzer

    analyzer = Analyzer({f"teacher{i}": m for i, m in enumerate(models)}, detector=None, engine=engine)
    temps = {k: s.data.temperature for k, s in analyzer.shown.items()}
    probs = []
    for i in tqdm(range(0, len(images), batch), disable=not progress, desc="teachers", unit="batch"):
        for face in analyzer.read(list(images[i:i + batch]), batch=batch):
            rows = [torch.from_numpy(r.logits).float() / temps[k] for k, r in face.items()]
            probs.append(torch.stack(rows).softmax(1).mean(0))
    return torch.stack(probs).numpy().astype(np.float32)


def save_teacher(path, names, label_names, probs: np.ndarray, teachers: list[str], command: str = "") -> Path:
    """Write the teachers' file; ``teachers`` and ``command`` (what made it) go into the cards of its students."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, names=np.array(names), label_names=np.array(label_names), probs=probs,
                 teachers=np.array(teachers), command=np.array(command))
    return path


def load_teacher(path, ds) -> np.ndarray:
    """The teachers' probabilities for each image of ``ds``, in its order and its class order."""
    with np.load(path, allow_pickle=False) as z:
        names, label_names, probs = list(z["names"]), list(z["label_names"]), z["probs"]
    if label_names != list(ds.label_set.names):
        raise ValueError(f"{path}: teacher classes {label_names} differ from the training split's "
                         f"{list(ds.label_set.names)}")
    row = {n: i for i, n in enumerate(names)}
    wanted = [os.path.basename(p) for p in ds.paths]
    missing = [n for n in wanted if n not in row]
    if missing:
        raise ValueError(f"{path}: no teacher probabilities for {len(missing)} training images, e.g. {missing[0]} "
                         "(made for another split?)")
    return probs[[row[n] for n in wanted]]


def mix_targets(labels: torch.Tensor, teacher: np.ndarray, weight: float) -> torch.Tensor:
    """``(1 - weight) * labels + weight * teacher``, both ``N x C`` distributions."""
    if not 0 <= weight <= 1:
        raise ValueError(f"--distill-weight must be in [0, 1], got {weight}")
    return (1 - weight) * labels + weight * torch.from_numpy(teacher).float()
