"""The app's resident memory after one request, against a bound that holds on either torch build: what the same
imports take, plus the copies of the weights the analyzer holds by construction, plus a budget for the rest
(allocator arenas, the start-up's self-checks, Gradio's state): 350 MB by default, a regression guard set about 50 MB
above the 296-301 MB measured with torch 2.11.0 (BENCHMARKS). And its start-up time.

Starts ``app.py`` (offline, the shipped weights unless --weights-dir), sends one photo through ``/predict`` (both
maps: the model's own attention and Grad-CAM), reads the server's RSS, and measures in a second process what the
same imports take with no model loaded, so the report splits the RSS into imports and the rest. Which torch build
is installed (CPU or CUDA wheel) sets most of the import cost, so it is printed too. The start-up time runs from
launching ``app.py`` until the page answers; with ``--cold`` the app starts on an empty ONNX cache
(``FER_ONNX_CACHE``), so it exports and checks its ONNX files first, as on a new host.

    python -m bench.app_memory --json memory.json [--cold]
    python -m bench.app_memory --weights-dir /path/to/weights --budget-mb 400
    python -m bench.app_memory --env FER_MAPS_DTYPE=bfloat16       # a setting of the app's (docs/memory.md)

Beside the RSS it reports the part of it that is file pages (``RssFile``: the libraries, and the ONNX files'
tensors where ONNX Runtime maps them) and the copies of the weights the analyzer holds, in MB: torch's float32
parameters, the bfloat16 copy for the maps where there is one, and the tensors of ONNX Runtime's files.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo.serve import rss_mb, start_app, stop_app
from bench.timing import emit

ROOT = Path(__file__).resolve().parent.parent

# What the server has imported once a request with Grad-CAM has run (grad-cam brings torchvision, scipy,
# scikit-learn and matplotlib with it).
IMPORTS = "import torch, torchvision, gradio, cv2, pytorch_grad_cam, demo.ui, fer_core.predict"


def imports_rss_mb() -> float:
    code = f"{IMPORTS}\nfrom demo.serve import rss_mb; import os; print(rss_mb(os.getpid()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.split()[-1])


def held_mb(weights_dir: Path, env: dict) -> dict:
    """What the analyzer holds of the weights (with the app's settings ``env``), in MiB: torch's float32 parameters
    (a fusion shares its branches' modules), their count, the bfloat16 copy for the maps where there is one, and the
    tensors of ONNX Runtime's files."""
    import os

    from fer_core.predict import MODEL_KEYS, Analyzer

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        slots = Analyzer.from_pretrained({k: weights_dir / k for k in MODEL_KEYS}, detector="haar").slots
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    distinct = {id(p): p for s in slots.values() for p in s.model.parameters()}
    n = sum(p.numel() for p in distinct.values())
    lean = sum(p.numel() * p.element_size() for s in slots.values() if s.lean is not None for p in s.lean.parameters())
    files = {f for s in slots.values() for r in (s.onnx, s.prefix) if r is not None
             for f in getattr(r, "paths", (getattr(r, "path", None),))}
    onnx = sum(f.stat().st_size + (f.with_name(f.name + ".data").stat().st_size
                                   if f.with_name(f.name + ".data").exists() else 0) for f in files)
    return {"params_fp32_mb": n * 4 / 2**20, "distinct_params": n, "bfloat16_copy_mb": lean / 2**20,
            "onnx_files_mb": onnx / 2**20, "onnx_files": sorted(f.name for f in files)}


def rss_parts_mb(pid: int) -> dict:
    """``RssAnon`` and ``RssFile`` of a process (Linux ``/proc``), in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, *value = line.split()
            if key in ("RssAnon:", "RssFile:"):
                out[key[:-1]] = int(value[0]) / 1024
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="App RSS after one request against the imports + the weights held + a budget.")
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--photo", default=str(ROOT / "demo/examples/grace_hopper.jpg"))
    ap.add_argument("--budget-mb", type=float, default=350.0,
                    help="allowed RSS beyond the imports and the copies of the weights the analyzer holds")
    ap.add_argument("--cold", action="store_true", help="start on an empty ONNX cache (the files built at start-up)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="a setting for the app")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import torch
    from gradio_client import Client, handle_file

    weights = Path(a.weights_dir)
    settings = dict(e.split("=", 1) for e in a.env)
    held = held_mb(weights, settings)
    params_mb = held["params_fp32_mb"]
    env = {"HF_HUB_OFFLINE": "1", "FER_WEIGHTS_DIR": str(weights), **settings}
    cold = tempfile.TemporaryDirectory(prefix="fer_onnx_") if a.cold else None
    if cold:
        env["FER_ONNX_CACHE"] = cold.name
    t0 = time.perf_counter()
    proc, url = start_app(env)
    start_s = time.perf_counter() - t0
    try:
        rss_start = rss_mb(proc.pid)
        t0 = time.perf_counter()
        answer = Client(url, verbose=False).predict(handle_file(a.photo), api_name="/predict")
        first_s = time.perf_counter() - t0
        if not answer.get("faces"):
            raise SystemExit(f"no face found in {a.photo}: the request did not run the models")
        time.sleep(1.0)  # (not a synchronisation: the answer is in; the allocator settles)
        rss, parts = rss_mb(proc.pid), rss_parts_mb(proc.pid)
    finally:
        stop_app(proc)
        if cold:
            cold.cleanup()
    base = imports_rss_mb()
    weights_mb = params_mb + held["bfloat16_copy_mb"] + held["onnx_files_mb"]
    bound = base + weights_mb + a.budget_mb
    res = {
        "torch": torch.__version__, "cuda_build": torch.version.cuda is not None,
        "weights_dir": str(weights), **{k: round(v, 1) if isinstance(v, float) else v for k, v in held.items()},
        "start_s": round(start_s, 1), "onnx_cache": "empty (built at start-up)" if cold else "as found",
        "env": a.env, "rss_started_mb": round(rss_start, 1), "rss_after_request_mb": round(rss, 1),
        "rss_file_mb": round(parts.get("RssFile", 0), 1), "rss_anon_mb": round(parts.get("RssAnon", 0), 1),
        "first_request_s": round(first_s, 2), "imports_mb": round(base, 1),
        "beyond_imports_mb": round(rss - base, 1),
        "beyond_imports_over_params": round((rss - base) / params_mb, 2),  # copies of each weight, and the rest
        "weights_held_over_params": round(weights_mb / params_mb, 2),  # the copies the analyzer holds by construction
        "rest_mb": round(rss - base - weights_mb, 1),  # beyond the imports and those copies
        "bound_mb": round(bound, 1), "budget_mb": a.budget_mb,
        "margin_mb": round(bound - rss, 1), "within_bound": rss <= bound,
    }
    emit(res, a.json)
    return res


if __name__ == "__main__":
    main()
