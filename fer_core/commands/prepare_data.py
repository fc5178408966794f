"""The data: lay FER+ and FER2013 out from their official files, then decode a dataset once into a compact cache.

    fer-data layout --fer2013-csv fer2013.csv --ferplus FERPlus    # -> $FER_DATA/ferplus, $FER_DATA/fer2013
    fer-data cache ferplus --splits train,valid --out .data/ferplus.npz.xz
    fer-data cache ferplus --splits train --protocol probability --out .data/ferplus_prob.npz.xz
    fer-data cache fer2013:/data/fer2013 --splits train,val --out .data/fer2013.npz.xz

``layout`` reads Kaggle's fer2013.csv and a copy of github.com/microsoft/FERPlus (``git clone``), and writes the
layout the readers take (:mod:`fer_core.data.layout`); ``FER_DATA`` says where (default ``~/.cache/fer/data``).
``cache`` decodes a dataset (``KIND`` under ``FER_DATA``, or ``KIND:PATH``) into uint8 arrays + labels in one lzma
file, to train from or carry to a GPU machine; bad files are listed with their paths and counted (``--strict`` stops
at the first). ``fer-data KIND[:PATH] --out FILE`` (no subcommand) is ``cache``, as it was.
"""
from __future__ import annotations

import argparse
import os
import time

from fer_core.data import DatasetError, read_dataset, resolve_data, save_cache
from fer_core.data.layout import write_layout

COMMANDS = ("layout", "cache")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fer-data", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    lay = sub.add_parser("layout", help="FER+ and FER2013 from fer2013.csv and the FER+ repository")
    lay.add_argument("--fer2013-csv", required=True, help="Kaggle's fer2013.csv (the challenge's, 35,887 rows)")
    lay.add_argument("--ferplus", required=True,
                     help="a copy of github.com/microsoft/FERPlus (fer2013new.csv, data/FER2013*/label.csv)")
    lay.add_argument("--out", default=None, help="the data folder (default: $FER_DATA, else ~/.cache/fer/data)")
    lay.add_argument("--overwrite", action="store_true", help="replace ferplus/ and fer2013/ there")
    cache = sub.add_parser("cache", help="decode a dataset into a prepared cache file")
    cache.add_argument("data", nargs="?", default="ferplus",
                       help="KIND (its folder under $FER_DATA) or KIND:PATH; default ferplus")
    cache.add_argument("--splits", default="train,valid")
    cache.add_argument("--protocol", default="majority", choices=("majority", "probability"))
    cache.add_argument("--out", required=True)
    cache.add_argument("--strict", action="store_true")
    return ap


def main(argv=None):
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "cache")  # the command's earlier form: fer-data KIND:PATH --out FILE
    a = parser().parse_args(argv)
    try:
        return run(a)
    except DatasetError as e:  # a missing or malformed input: its message says what to do, without a traceback
        raise SystemExit(f"fer-data {a.command}: {e}") from None


def run(a) -> int:
    t0 = time.time()
    if a.command == "layout":
        print(write_layout(a.fer2013_csv, a.ferplus, a.out, overwrite=a.overwrite).report(), flush=True)
        print(f"in {time.time() - t0:.0f} s")
        return 0
    kind, path = resolve_data(a.data)
    splits = {}
    for s in a.splits.split(","):
        splits[s] = read_dataset(kind, path, s, a.protocol, strict=a.strict)
        print(splits[s].report(), flush=True)
    out = save_cache(splits, a.out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
