"""Where datasets live: ``FER_DATA`` (default ``~/.cache/fer/data``), one folder per dataset in its official layout
(``ferplus/FER2013Train/`` ..., ``fer2013/train/<class>/`` ...). Nothing here downloads: FER2013 and FER+ come from
their official sources under their own terms (docs/training.md, "Get the data")."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "FER_DATA"


def data_root() -> Path:
    """``FER_DATA``, else ``~/.cache/fer/data``."""
    return Path(os.environ.get(DATA_ENV, "").strip() or Path.home() / ".cache" / "fer" / "data").expanduser()


def dataset_root(kind: str) -> Path:
    """The folder of one dataset under :func:`data_root` (``ferplus``, ``fer2013``, ...)."""
    return data_root() / kind
