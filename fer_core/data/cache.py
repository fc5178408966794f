"""A prepared cache: datasets decoded once into uint8 arrays + labels (+ soft targets) in one lzma file.

FER+ train + valid (32k 48x48 images) packs into about 55 MB and loads in seconds, small enough to carry to a
GPU machine. The file is an uncompressed ``.npz`` (read with ``allow_pickle=False``) wrapped in xz/lzma; the
metadata (label names, paths, errors, protocol drops) is a JSON string inside it.

    fer-data cache ferplus --splits train,valid --out .data/ferplus.npz.xz    # FER+ from $FER_DATA/ferplus
"""
from __future__ import annotations

import io
import json
import lzma
import os
from pathlib import Path

import numpy as np

from ..files import atomic_output
from ..labels import get_label_set
from .datasets import ImageDataset
from .root import require

CACHE_VERSION = 1


def save_cache(splits: dict[str, ImageDataset], path, preset: int = 6) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, meta = {}, {"version": CACHE_VERSION, "splits": {}}
    for split, ds in splits.items():
        arrays[f"{split}.images"] = ds.images
        arrays[f"{split}.labels"] = ds.labels
        if ds.soft is not None:
            arrays[f"{split}.soft"] = ds.soft
        meta["splits"][split] = {"name": ds.name, "label_names": list(ds.label_set.names),
                                 "paths": [os.path.basename(p) for p in ds.paths], "errors": ds.errors,
                                 "dropped": ds.dropped}
    arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_output(path) as tmp, lzma.open(tmp, "wb", preset=preset) as f:
        f.write(buf.getbuffer())
    return path


def load_cache(path) -> dict[str, ImageDataset]:
    path = require("cache", path)
    try:
        with lzma.open(path, "rb") as f:
            data = np.load(io.BytesIO(f.read()), allow_pickle=False)
            meta = json.loads(str(data["meta"]))
            out = {}
            for split, m in meta["splits"].items():
                out[split] = ImageDataset(
                    images=data[f"{split}.images"], labels=data[f"{split}.labels"],
                    label_set=get_label_set(m["label_names"]), paths=m["paths"],
                    soft=data[f"{split}.soft"] if f"{split}.soft" in data.files else None,
                    errors=[tuple(e) for e in m["errors"]], dropped=m["dropped"], name=m["name"])
    except (lzma.LZMAError, EOFError, KeyError, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable dataset cache ({type(e).__name__}: {e})") from None
    return out
