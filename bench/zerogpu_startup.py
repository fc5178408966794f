"""How long the app takes to answer its page in ZeroGPU mode (the real ``spaces`` package, a loopback stand-in for
its device API: bench/zerogpu.py) against a plain start on the same machine, in the same run, on the shipped
weights; and what the former start-up did under the package's torch-function mode (a deep copy of the CPU
analyzer to ``cuda``), timed alone.

Both starts use one ONNX cache, filled by a first, untimed start (the files a host builds once); the starts are
timed in turns (plain, ZeroGPU, plain, ...), from launching ``python app.py`` until the page answers.

    python -m bench.zerogpu_startup --json zerogpu_startup.json [--runs 3] [--no-former]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.timing import emit
from bench.zerogpu import DeviceApi
from demo.serve import start_app, stop_app

ROOT = Path(__file__).resolve().parent.parent
FORMER = """
import time
import spaces  # ZeroGPU mode: the torch-function mode is entered on this thread
from fer_core.predict import Analyzer
t0 = time.perf_counter()
cpu = Analyzer.from_pretrained(detector="yunet", device="cpu")  # the former app.py: the CPU models on this thread
t1 = time.perf_counter()
cpu.to("cuda")  # the former ZeroGpuRunner: a deep copy of the models under the mode, then to cuda
print(t1 - t0, time.perf_counter() - t1)
"""


def timed_start(env: dict) -> float:
    t0 = time.perf_counter()
    proc, _ = start_app(env, timeout=900)
    seconds = time.perf_counter() - t0
    stop_app(proc)
    return seconds


def former_s(env: dict) -> tuple[float, float]:
    """Seconds of the former start-up's two steps under the mode, in a process of its own: the CPU analyzer built
    on the main thread, then its deep copy to cuda."""
    out = subprocess.run([sys.executable, "-c", FORMER], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=3600, check=True)
    build, copy = (float(x) for x in out.stdout.split()[-2:])
    return build, copy


def main(argv=None):
    ap = argparse.ArgumentParser(description="ZeroGPU start-up against a plain start.")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-former", action="store_true", help="skip timing the former copy under the mode")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import os
    from importlib.metadata import version

    import torch

    api = DeviceApi()
    with tempfile.TemporaryDirectory(prefix="fer_zerogpu_bench_") as tmp:
        base = {"FER_WEIGHTS_SOURCE": "local", "HF_HUB_OFFLINE": "1", "FER_ONNX_CACHE": str(Path(tmp) / "onnx")}
        zero = {**base, **api.env(Path(tmp) / "offload")}
        first = timed_start(base)  # fills the ONNX cache
        times = {"plain": [], "zerogpu": []}
        for _ in range(a.runs):
            times["plain"].append(timed_start(base))
            times["zerogpu"].append(timed_start(zero))
        former = None if a.no_former else former_s(dict(os.environ, **zero))
    api.stop()
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    res = {"torch": torch.__version__, "spaces": version("spaces"),
           "runs": a.runs, "first_start_s": round(first, 1), "plain_s": [round(t, 1) for t in times["plain"]],
           "zerogpu_s": [round(t, 1) for t in times["zerogpu"]], "plain_median_s": round(med["plain"], 1),
           "zerogpu_median_s": round(med["zerogpu"], 1), "ratio": round(med["zerogpu"] / med["plain"], 2),
           "former_cpu_build_under_mode_s": None if former is None else round(former[0], 1),
           "former_copy_to_cuda_under_mode_s": None if former is None else round(former[1], 1),
           "startup_reports": api.startup_reports}
    emit(res, a.json)
    return res


if __name__ == "__main__":
    main()
