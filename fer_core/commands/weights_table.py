"""The shipped weights' table in README.md and weights/README.md, written from the weights' config.json files.

    python train_scripts/weights_table.py              # print the table (links relative to the project root)
    python train_scripts/weights_table.py --write      # rewrite the table block in README.md and weights/README.md
    python train_scripts/weights_table.py --check      # exit 1 when either file's table differs from the weights

Each file holds the table between '<!-- weights-table: begin -->' and '<!-- weights-table: end -->'; the links
to the model cards are made relative to the file's own folder.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from fer_core.card import replace_table, weights_table
from fer_core.files import project_root, write_text_atomic

ROOT = project_root()

DOCS = (ROOT / "README.md", ROOT / "weights" / "README.md")


def table_for(doc: Path, weights_dir: Path) -> list[str]:
    link_root = os.path.relpath(weights_dir, doc.parent).replace(os.sep, "/")
    return weights_table(weights_dir, "" if link_root == "." else link_root + "/")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Print, write or check the shipped weights' table.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the table block in the docs")
    mode.add_argument("--check", action="store_true", help="exit 1 when a doc's table is out of date")
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--docs", nargs="+", default=[str(d) for d in DOCS])
    a = ap.parse_args(argv)
    weights_dir = Path(a.weights_dir).resolve()
    if not (a.write or a.check):
        print("\n".join(table_for(ROOT / "README.md", weights_dir)))
        return 0
    stale = []
    for doc in map(Path, a.docs):
        text = doc.read_text()
        new = replace_table(text, table_for(doc.resolve(), weights_dir))
        if new != text:
            stale.append(doc)
            if a.write:
                write_text_atomic(doc, new)
    verb = "rewrote" if a.write else "out of date"
    for doc in stale:
        print(f"{verb}: {doc}")
    return 1 if stale and a.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
