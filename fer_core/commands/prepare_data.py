"""Decode a dataset once into a compact cache (uint8 arrays + labels, lzma) to train from or carry to a GPU.

    python train_scripts/prepare_data.py ferplus:../shared/datasets/ferplus --splits train,valid --out .data/ferplus.npz.xz
    python train_scripts/prepare_data.py fer2013:../shared/datasets/fer2013 --splits train,val --out .data/fer2013.npz.xz

Bad files are listed with their paths and counted; --strict stops at the first one.
"""
from __future__ import annotations

import argparse
import os
import time

from fer_core.data import read_dataset, save_cache


def main(argv=None):
    ap = argparse.ArgumentParser(description="Decode a dataset into a prepared cache file.")
    ap.add_argument("data", help="KIND:PATH, e.g. ferplus:../shared/datasets/ferplus")
    ap.add_argument("--splits", default="train,valid")
    ap.add_argument("--protocol", default="majority", choices=("majority", "probability"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args(argv)
    kind, _, path = a.data.partition(":")
    t0 = time.time()
    splits = {}
    for s in a.splits.split(","):
        splits[s] = read_dataset(kind, path, s, a.protocol, strict=a.strict)
        print(splits[s].report(), flush=True)
    out = save_cache(splits, a.out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
