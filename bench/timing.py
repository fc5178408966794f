"""Wall-clock timing shared by the benches: each call timed after a few warm-up calls, in milliseconds."""
from __future__ import annotations

import time

import numpy as np


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
