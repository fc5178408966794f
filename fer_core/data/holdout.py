"""A selection slice held out of the training split: choose epochs, recipes and temperatures on it, so that the
dataset's own validation split is measured once per shipped weight and never chosen on.

The slice is a list of image names (one per line, ``#`` comments allowed), drawn once, stratified by class and
seeded, and stored with the code (``fer_core/data/splits/``): a list of file names, not images. A run given
``--select ferplus`` trains on FER+ train without those images and selects on them.

    python -m fer_core.data.holdout ferplus --fraction 0.1 --seed 0 \\
        --out fer_core/data/splits/ferplus_train_select.txt
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from .datasets import DatasetError, ImageDataset

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
SHIPPED = {"ferplus": SPLITS_DIR / "ferplus_train_select.txt"}


def stratified_holdout(names, labels, fraction: float = 0.1, seed: int = 0) -> list[str]:
    """``fraction`` of each class (at least one image of a class with two or more), drawn with ``seed``;
    the names sorted."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    names, labels = np.asarray(names), np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * len(idx)))
        k = max(k, 1) if len(idx) > 1 else 0
        held += list(names[rng.choice(idx, size=k, replace=False)])
    return sorted(held)


def read_list(spec: str) -> tuple[Path, list[str]]:
    """The names a ``--select`` value names: a shipped slice's key (``ferplus``) or a file of names."""
    path = SHIPPED.get(spec, Path(spec).expanduser())
    if not path.is_file():
        raise FileNotFoundError(f"--select {spec}: no such list (shipped: {', '.join(SHIPPED)}; or a file of "
                                "image names, one per line)")
    names = [line.strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ValueError(f"{path}: the list holds no image names")
    return path, names


def _subset(ds: ImageDataset, keep: np.ndarray, name: str) -> ImageDataset:
    return ImageDataset(images=ds.images[keep], labels=ds.labels[keep], label_set=ds.label_set,
                        paths=[p for p, k in zip(ds.paths, keep) if k],
                        soft=None if ds.soft is None else ds.soft[keep], errors=ds.errors, dropped=ds.dropped,
                        name=name)


def in_list(ds: ImageDataset, names) -> np.ndarray:
    """Which images of ``ds`` the list names (by file name: the cache keeps base names only)."""
    wanted = set(names)
    return np.array([os.path.basename(p) in wanted for p in ds.paths], dtype=bool)


def without(ds: ImageDataset, names, label: str) -> ImageDataset:
    """``ds`` less the listed images (the training part)."""
    return _subset(ds, ~in_list(ds, names), f"{ds.name} without {label}")


def only(ds: ImageDataset, names, label: str) -> ImageDataset:
    """The listed images of ``ds`` (the selection part); an error when none of them is there."""
    keep = in_list(ds, names)
    if not keep.any():
        raise DatasetError(f"{ds.name}: none of the {len(names)} images of {label} is in this split")
    return _subset(ds, keep, f"{ds.name}: {label}")


def first(ds: ImageDataset, n: int) -> ImageDataset:
    """The first ``n`` images of ``ds`` (a quick run's ``--limit-train``), their paths and votes with them."""
    return _subset(ds, np.arange(len(ds)) < n, f"{ds.name}: first {n}")


def main(argv=None):
    from .datasets import read_dataset
    from .root import resolve_data

    ap = argparse.ArgumentParser(description="Draw a stratified selection slice of a training split.")
    ap.add_argument("data", help="KIND (its folder under $FER_DATA) or KIND:PATH, e.g. ferplus")
    ap.add_argument("--split", default="train")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    kind, path = resolve_data(a.data)
    # every image whose top vote is an emotion (the probability protocol's set, ties kept): a superset of the
    # majority protocol's, stratified by the top vote
    ds = read_dataset(kind, path, a.split, "probability") if kind == "ferplus" else read_dataset(kind, path, a.split)
    held = stratified_holdout([os.path.basename(p) for p in ds.paths], ds.labels, a.fraction, a.seed)
    header = (f"# {len(held)} of {len(ds)} images of {kind} {a.split} ({a.fraction:.0%} of each class by top "
              f"vote, seed {a.seed}): the selection slice; python -m fer_core.data.holdout {a.data} --split "
              f"{a.split} --fraction {a.fraction} --seed {a.seed} --out FILE")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(header + "\n" + "\n".join(held) + "\n")
    print(f"wrote {a.out}: {len(held)} names")


if __name__ == "__main__":
    main()
