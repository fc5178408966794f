"""What ONNX Runtime holds of the shipped branches and how fast they read, per arrangement of their ONNX files:

* ``model+prefix``: the whole reading in one graph, and the part before Grad-CAM's target for the maps (each
  branch's first layers held twice);
* ``prefix+suffix`` (the app): the same prefix, and the rest after it; a reading chains the two, so each weight is
  held once;

each with ONNX Runtime's weight prepacking (the default) and without (``session.disable_prepacking``). The memory is
the RSS that the sessions add to a process holding the torch models (each arrangement in a fresh process, after a
few readings); the speed is one face with its mirror image (batch 2) on one thread (a branch's share of the page's
two) and on two, the arrangements timed in turns in one process, the ratios against ``model+prefix``.

    python -m bench.onnx_memory --json out.json [--weights-dir weights] [--runs 40]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.timing import emit

ROOT = Path(__file__).resolve().parent.parent
BRANCHES = ("ddamfn", "resnet_dda")
ARRANGEMENTS = {"model+prefix": ("model", "prefix"), "prefix+suffix": ("prefix", "suffix")}


def _models(weights_dir: str) -> dict:
    from fer_core.predict import MODEL_KEYS
    from fer_core.weights import load_pretrained

    models = {}
    for key in MODEL_KEYS:
        models[key] = load_pretrained(str(Path(weights_dir) / key), reuse=list(models.values()))
    return {k: m.requires_grad_(False).eval() for k, m in models.items()}


def _sessions(models: dict, parts, threads: int, prepack: bool) -> dict:
    from fer_core.preprocess import resolve_data_config
    from fer_core.runtime import OnnxChain, OnnxReader, cache_path

    out = {}
    for key in BRANCHES:
        r = {p: OnnxReader(cache_path(models[key], p), threads, prepack=prepack) for p in parts}
        read = r["model"] if "model" in r else OnnxChain(r["prefix"], r["suffix"])
        out[key] = (read, resolve_data_config(models[key]).input_size)
    return out


def held_mb(weights_dir: str, arrangement: str, prepack: bool) -> dict:
    """In this process: the RSS the sessions of ``arrangement`` add to the torch models, after three readings."""
    import gc

    import torch

    from demo.serve import rss_mb
    from fer_core.runtime import _release_freed_memory

    models = _models(weights_dir)
    gc.collect()
    _release_freed_memory()
    before = rss_mb(os.getpid())
    sessions = _sessions(models, ARRANGEMENTS[arrangement], 1, prepack)
    for read, size in sessions.values():
        for _ in range(3):
            read(torch.randn(2, 3, size, size))
    gc.collect()
    _release_freed_memory()
    return {"sessions_mb": round(rss_mb(os.getpid()) - before, 1)}


def speeds(weights_dir: str, runs: int) -> dict:
    """p50 ms of each branch read by each arrangement, prepacked or not, on one thread and two, timed in turns."""
    import torch

    from bench.timing import p50_interleaved

    models = _models(weights_dir)
    out = {}
    for threads in (1, 2):
        fns = {}
        for name in ARRANGEMENTS:
            for prepack in (True, False):
                for key, (read, size) in _sessions(models, ARRANGEMENTS[name], threads, prepack).items():
                    x = torch.randn(2, 3, size, size)
                    fns[f"{key} {name}{'' if prepack else ' no-prepack'} {threads}t"] = (lambda r=read, x=x: r(x))
        out.update({k: round(v, 2) for k, v in p50_interleaved(fns, runs).items()})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--held", nargs=2, metavar=("ARRANGEMENT", "PREPACK"), help=argparse.SUPPRESS)  # one child
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if a.held:
        print(json.dumps(held_mb(a.weights_dir, a.held[0], a.held[1] == "1")))
        return None
    from fer_core.runtime import onnx_reader

    models = _models(a.weights_dir)  # every file built (and checked) once, before anything is measured
    from fer_core.preprocess import resolve_data_config

    for key in BRANCHES:
        for part in ("model", "prefix", "suffix"):
            assert onnx_reader(models[key], resolve_data_config(models[key]).input_size, part=part)[0] is not None
    res = {"weights_dir": a.weights_dir, "runs": a.runs, "memory": {}, "speed_ms": speeds(a.weights_dir, a.runs)}
    for name in ARRANGEMENTS:
        for prepack in ("1", "0"):
            out = subprocess.run([sys.executable, "-m", "bench.onnx_memory", "--weights-dir", a.weights_dir,
                                  "--held", name, prepack], cwd=ROOT, capture_output=True, text=True, check=True)
            res["memory"][f"{name}{'' if prepack == '1' else ' no-prepack'}"] = json.loads(out.stdout)["sessions_mb"]
    s = res["speed_ms"]
    res["ratios"] = {f"{key} {t}t {variant}": round(s[f"{key} {variant} {t}t"] / s[f"{key} model+prefix {t}t"], 3)
                     for key in BRANCHES for t in (1, 2)
                     for variant in ("prefix+suffix", "model+prefix no-prepack", "prefix+suffix no-prepack")}
    emit(res, a.json)
    return res


if __name__ == "__main__":
    main()
