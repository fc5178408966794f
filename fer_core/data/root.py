"""Where datasets live: ``FER_DATA`` (default ``~/.cache/fer/data``), one folder per dataset in its official layout
(``ferplus/FER2013Train/`` ..., ``fer2013/train/<class>/`` ...). Nothing here downloads: FER2013 and FER+ come from
their official sources under their own terms (docs/training.md, "Get the data"), and ``fer-data layout`` lays them
out (:mod:`fer_core.data.layout`).

A dataset is named ``KIND`` (its folder under ``FER_DATA``) or ``KIND:PATH`` (anywhere), as ``fer-train --data``,
``fer-data cache`` and ``python -m fer_core.data.holdout`` take it; ``cache:FILE`` is a prepared cache."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "FER_DATA"
GET_THE_DATA = 'docs/training.md, "Get the data"'
FER2013_KAGGLE = ("https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-"
                  "challenge/data")
FERPLUS_REPO = "https://github.com/microsoft/FERPlus"
LAYOUT_COMMAND = "fer-data layout --fer2013-csv fer2013.csv --ferplus FERPlus"
FERPLUS_DOWNLOADS = (
    f"  1. fer2013.csv, FER2013's pixels (research use): Kaggle, \"Challenges in Representation Learning: Facial "
    f"Expression Recognition Challenge\", {FER2013_KAGGLE}\n"
    f"  2. the FER+ labels (MIT licence): git clone {FERPLUS_REPO} (fer2013new.csv and data/FER2013*/label.csv)\n"
    f"then lay both out under FER_DATA: {LAYOUT_COMMAND}")
BY_REQUEST = "is given by its authors on request (research use); put it there in its own layout, or pass its path"
# what to download for each kind, and from where
HOW_TO_GET = {
    "ferplus": "FER+ is FER2013's pixels with the FER+ votes, from two downloads:\n" + FERPLUS_DOWNLOADS,
    "fer2013": "FER2013's class folders are written with FER+, from two downloads:\n" + FERPLUS_DOWNLOADS,
    "rafdb": "RAF-DB basic " + BY_REQUEST,
    **{k: "AffectNet " + BY_REQUEST for k in ("affectnet", "affectnet7", "affectnet8")},
    "cache": "a cache is written by: fer-data cache KIND --splits ... --out FILE",
}


class DatasetError(ValueError):
    pass


class DataNotFound(DatasetError, FileNotFoundError):
    """A dataset's folder (or file) is not there: the message names what to download, from where, and the command
    that lays it out."""


def data_root() -> Path:
    """``FER_DATA``, else ``~/.cache/fer/data``."""
    return Path(os.environ.get(DATA_ENV, "").strip() or Path.home() / ".cache" / "fer" / "data").expanduser()


def dataset_root(kind: str) -> Path:
    """The folder of one dataset under :func:`data_root` (``ferplus``, ``fer2013``, ...)."""
    return data_root() / {"affectnet7": "affectnet", "affectnet8": "affectnet"}.get(kind, kind)


def resolve_data(spec: str) -> tuple[str, Path]:
    """``KIND:PATH`` -> ``(KIND, PATH)``; ``KIND`` (or ``KIND:``) -> ``(KIND, FER_DATA/KIND)``. A cache
    (``cache:FILE``) must name its file."""
    kind, _, path = spec.partition(":")
    if not kind:
        raise ValueError(f"{spec!r}: expected KIND or KIND:PATH (e.g. ferplus, ferplus:/data/ferplus, cache:FILE)")
    if kind == "cache" and not path:
        raise ValueError("cache: needs its file, e.g. cache:.data/ferplus.npz.xz (fer-data cache writes it)")
    return kind, Path(path).expanduser() if path else dataset_root(kind)


def missing_message(kind: str, path, what: str = "") -> str:
    """What to say when ``kind``'s data (or the file ``what``) is not at ``path``: where it was looked for and how
    to get it."""
    where = (f"{path} (FER_DATA={os.environ[DATA_ENV]})" if os.environ.get(DATA_ENV, "").strip()
             and Path(path).is_relative_to(data_root()) else f"{path}")
    how = HOW_TO_GET.get(kind, "put it there in its own layout, or pass its path")
    return (f"no {what or kind + ' data'} at {where}.\n{how}\n"
            f"({GET_THE_DATA}; FER_DATA sets the folder, default ~/.cache/fer/data)")


def require(kind: str, path) -> Path:
    """``path`` if it exists, else :class:`DataNotFound` with :func:`missing_message`."""
    path = Path(path)
    if not path.exists():
        raise DataNotFound(missing_message(kind, path))
    return path
