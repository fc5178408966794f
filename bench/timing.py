"""Wall-clock timing shared by the benches (each call timed after a few warm-up calls, in milliseconds), and the
command-line options of the benches that time the page's path on the shipped weights."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def measure(fn, n: int, warmup: int = 2) -> list[float]:
    """``n`` timings of ``fn()`` in ms, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return ts


def p50(fn, runs: int, warmup: int = 3) -> float:
    """The median of :func:`measure`."""
    return float(np.median(measure(fn, runs, warmup)))


def p50_interleaved(fns: dict, runs: int, warmup: int = 3) -> dict:
    """``{name: p50 ms}`` of several functions timed in turns (one call of each per round), so that a machine whose
    speed drifts during the run weighs on all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    ts = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append((time.perf_counter() - t0) * 1000)
    return {k: float(np.median(v)) for k, v in ts.items()}


def add_page_options(ap, runs: int = 30) -> None:
    """The weights folder, the photo, the runs per figure and the threads of a bench of the page's path."""
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--photo", default=str(ROOT / "demo/examples/grace_hopper.jpg"))
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--threads", type=int, default=2)


def emit(res: dict, path: str | None) -> None:
    """A bench's result: printed as JSON, and written to ``path`` (its ``--json``) when given."""
    print(json.dumps(res, indent=2))
    if path:
        Path(path).write_text(json.dumps(res, indent=2))
