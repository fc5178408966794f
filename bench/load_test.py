"""Load test: N concurrent gradio_client clients x M requests against a local app (started here unless --url).

Checks: no errors, the queue stays bounded (the app's queue max_size), the server's memory stays flat; prints
p50 / p95 latency. Traffic goes to 127.0.0.1 only.

    python -m bench.load_test --clients 20 --requests 25 --json load.json
    python -m bench.load_test --url http://127.0.0.1:7860 --clients 4 --requests 5
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from demo.serve import rss_mb, start_app, stop_app
from bench.timing import emit

ROOT = Path(__file__).resolve().parent.parent


def summary(a, lat, errors, mem, wall) -> dict:
    """Latency percentiles, errors, throughput, and the app's memory over the run."""
    lat_ms = np.array(lat) * 1000
    res = {"clients": a.clients, "requests_each": a.requests, "completed": len(lat), "errors": len(errors),
           "error_examples": errors[:5], "p50_ms": float(np.median(lat_ms)) if len(lat) else None,
           "p95_ms": float(np.percentile(lat_ms, 95)) if len(lat) else None, "wall_s": round(wall, 1),
           "throughput_per_s": round(len(lat) / wall, 2)}
    if mem:  # after warm-up (the first quarter), the second quarter against the last
        q = max(1, len(mem) // 4)
        res.update(rss_first_mb=round(float(mem[0]), 1), rss_second_quarter_mb=round(float(np.median(mem[q:2 * q])), 1),
                   rss_last_quarter_mb=round(float(np.median(mem[-q:])), 1), rss_max_mb=round(max(mem), 1))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description="Concurrent gradio_client load against a local app.")
    ap.add_argument("--url", default=None)
    ap.add_argument("--weights-dir", default=None, help="FER_WEIGHTS_DIR for the app started here")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--photo", default=str(ROOT / "demo/examples/grace_hopper.jpg"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    from gradio_client import Client, handle_file

    proc, url = None, a.url
    if url is None:
        if a.weights_dir is None and not (ROOT / "weights" / "ddamfn" / "config.json").exists():
            from tests.fixtures import make_weights

            scratch = tempfile.TemporaryDirectory()  # goes when the benchmark ends
            a.weights_dir = str(make_weights(Path(scratch.name)))
            print(f"no shipped weights: using untrained test weights in {a.weights_dir}")
        proc, url = start_app({"HF_HUB_OFFLINE": "1", **({"FER_WEIGHTS_DIR": a.weights_dir} if a.weights_dir else {})})
    mem, stop = [], threading.Event()

    def sample():
        while not stop.is_set() and proc is not None:
            mem.append(rss_mb(proc.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lat, errors, lock = [], [], threading.Lock()

    def client_run(i):
        client = Client(url, verbose=False)
        for _ in range(a.requests):
            t0 = time.perf_counter()
            try:
                ok = bool(client.predict(handle_file(a.photo), api_name="/predict").get("faces"))
                with lock:
                    lat.append(time.perf_counter() - t0)
                    if not ok:
                        errors.append("no faces in the answer")
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

    t0 = time.time()
    try:
        with ThreadPoolExecutor(a.clients) as pool:
            list(pool.map(client_run, range(a.clients)))
    finally:
        wall = time.time() - t0
        stop.set()
        if proc is not None:
            stop_app(proc)
    res = summary(a, lat, errors, mem, wall)
    emit(res, a.json)
    return res


if __name__ == "__main__":
    main()
