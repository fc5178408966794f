"""BENCHMARKS.md, written from the benches' results: one section per ``bench/results/*.json``.

    python -m bench.report             # rewrite BENCHMARKS.md
    python -m bench.report --check     # exit 1 when BENCHMARKS.md differs from what the results give

Each file holds one bench's current figures (the schema: ``REQUIRED``)::

    {"name": "engines", "title": "...", "command": "python -m bench.engines --json out.json", "machine": "...",
     "date": "YYYY-MM-DD", "summary": "one paragraph: what it shows, the ratio", "columns": [...],
     "rows": [[...], ...], "raw": {... the bench's own --json output ...}}

Sections follow ``ORDER``; a name not in it comes after, alphabetically. Cells are written as given (a figure is
best stored as the text it is read as: ``"15.9 ms"``); ``raw`` is kept for whoever reruns the bench, not printed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from fer_core.files import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "BENCHMARKS.md"
WIDTH = 116  # the prose is wrapped; table rows are not
REQUIRED = {"name": str, "title": str, "command": str, "machine": str, "date": str, "summary": str,
            "columns": list, "rows": list, "raw": dict}
# the page first, then what it costs, then how it compares, then the experiments' benches
ORDER = ("page", "cpu_latency", "engines", "maps", "video_throughput", "load_test", "app_memory", "zerogpu_startup",
         "cluster", "peers", "balance", "balanced", "levers", "backbones", "int8", "train_throughput")
HEADER = """# Benchmarks

<!-- Written by `python -m bench.report` from bench/results/*.json: edit those, then rerun it. -->

The current figures, one section per benchmark, each from its file in [bench/results/](bench/results/) (the
command that measured it, the machine, the date). Every bench prints its ratio against a baseline it measures in
the same run; none of them is a test. How these figures were reached, the runs before them and what was tried
and dropped: [docs/experiments.md](docs/experiments.md). The shipped weights' accuracy is in their table
([README](README.md#the-models), [weights/README.md](weights/README.md)), from their `config.json`.
"""


class ResultError(ValueError):
    pass


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (``-`` and ``_`` kept), spaces to ``-``."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def load(path: Path) -> dict:
    """One results file, checked against the schema; the errors name the file and the key."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: not JSON ({e})") from None
    for key, kind in REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise ResultError(f"{path}: '{key}' must be a {kind.__name__}, got {type(data.get(key)).__name__}")
    if data["name"] != path.stem:
        raise ResultError(f"{path}: name {data['name']!r} differs from the file's name")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["date"]):
        raise ResultError(f"{path}: date {data['date']!r} is not YYYY-MM-DD")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, list) or len(row) != len(data["columns"]):
            raise ResultError(f"{path}: row {i} has {len(row) if isinstance(row, list) else '?'} cells for "
                              f"{len(data['columns'])} columns")
    return data


def ordered(results: list[dict]) -> list[dict]:
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(results, key=lambda r: (rank.get(r["name"], len(ORDER)), r["name"]))


def cell(value) -> str:
    return ("" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")


def section(r: dict) -> list[str]:
    lines = [f"## {r['title']}", "", *textwrap.wrap(r["summary"].strip(), WIDTH, break_long_words=False,
                                                       break_on_hyphens=False), ""]
    if r["columns"]:
        lines += ["| " + " | ".join(map(cell, r["columns"])) + " |", "|" + "---|" * len(r["columns"])]
        lines += ["| " + " | ".join(map(cell, row)) + " |" for row in r["rows"]]
        lines.append("")
    lines += textwrap.wrap(f"`{r['command']}` ({r['date']}; {r['machine']})", WIDTH, break_long_words=False,
                           break_on_hyphens=False) + [""]
    return lines


def render(results_dir: Path = RESULTS) -> str:
    results = ordered([load(p) for p in sorted(Path(results_dir).glob("*.json"))])
    lines = HEADER.splitlines() + [""]
    lines += [f"- [{r['title']}](#{slug(r['title'])}), {r['date']}" for r in results] + [""]
    for r in results:
        lines += section(r)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write BENCHMARKS.md from bench/results/*.json.")
    ap.add_argument("--check", action="store_true", help="exit 1 when BENCHMARKS.md is out of date")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args(argv)
    try:
        text = render(Path(a.results))
    except ResultError as e:
        print(e, file=sys.stderr)
        return 2
    out = Path(a.out)
    if a.check:
        same = out.exists() and out.read_text() == text
        print(f"{out}: {'up to date' if same else 'out of date: run python -m bench.report'}")
        return 0 if same else 1
    write_text_atomic(out, text)
    print(f"wrote {out} from {len(list(Path(a.results).glob('*.json')))} results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
