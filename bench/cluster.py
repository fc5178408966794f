"""Analysed frames/s and images/s of fer-predict's batch in one process and on a local Ray cluster of 1 and 2 workers
(fer_core.predict.cluster), with the shipped weights: the engine's overhead as a ratio against the one process
measured in the same run.

    python -m bench.cluster --json out.json [--images 48] [--clips 4] [--frames 60] [--every 1]

Two rates: end to end, the whole batch as a user waits for it, the models' loading included (one process: the
Analyzer; Ray: each worker's ``__init__``, side by side); and steady, after the first record arrived (what a batch of
hours runs at). The cluster's own start (``ray.init``, once per cluster) is timed apart. Images and videos are timed
in separate batches. One process reads with torch on 2 threads (the CLI's default); one Ray worker holds 2 CPUs
(2 threads), two hold 1 each.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.video_throughput import make_clip
from fer_core.predict import MODEL_KEYS, cli
from fer_core.predict.cluster import Spec, stream, worker_config

ROOT = Path(__file__).resolve().parent.parent


def make_batch(folder: Path, images: int, clips: int, frames: int) -> tuple[list[Path], list[Path]]:
    """``images`` photos (the two examples in turn, one face each) and ``clips`` clips of one face, MJPG 640x480."""
    photos = [ROOT / "demo/examples/grace_hopper.jpg", ROOT / "demo/examples/astronaut.png"]
    ims = []
    for i in range(images):
        src = photos[i % 2]
        ims.append(folder / f"im{i:03d}{src.suffix}")
        shutil.copy(src, ims[-1])
    vids = [make_clip(folder / f"clip{i}.avi", frames, (640, 480)) for i in range(clips)]
    return ims, vids


def one_process(files, a) -> dict:
    """The CLI's one-process path: load the Analyzer, read every file."""
    import torch

    from fer_core.predict import Analyzer
    from fer_core.predict.batch import ReadOptions, read_input

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    analyzer = Analyzer.from_pretrained(cli.weight_names(a), detector=a.detector, device="cpu")
    load = time.perf_counter() - t0
    times = [time.perf_counter() - t0 for f in files for _ in read_input(analyzer, f, ReadOptions.from_args(a))]
    return {**rates(times), "load_s": load}


def on_ray(files, a, workers: int, cpus: float) -> dict:
    """The ``--cluster`` path's stream on the connected cluster (the workers' start, models loaded, included)."""
    spec = Spec("local", workers, cpus)
    t0 = time.perf_counter()
    times, rss = [], {}
    for o in stream(files, spec, workers, worker_config(a, spec)):
        times.append(time.perf_counter() - t0)
        if o.worker not in rss:  # a worker's memory, its models loaded and its first input read
            rss[o.worker] = rss_mb(int(o.worker.rsplit(":", 1)[1]))
    return {**rates(times), "worker_processes": len(rss), "worker_rss_mb": sorted(rss.values())}


def rates(times: list[float]) -> dict:
    """From each record's arrival (seconds from the start, the models' loading included): records per second
    end to end, and in the steady state (the records after the first arrival over the time after it)."""
    after = [t for t in times if t > times[0]]
    return {"records": len(times), "seconds": times[-1], "first_record_s": times[0], "per_s": len(times) / times[-1],
            "steady_per_s": len(after) / (times[-1] - times[0]) if after else None}


def rss_mb(pid: int) -> float:
    """A process's resident memory (this machine's /proc)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def measure(kind, files, a, modes) -> dict:
    import ray

    out = {"one process": one_process(files, a)}
    print(kind, "one process", out["one process"], file=sys.stderr, flush=True)
    for workers, cpus in modes:
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=512 << 20)
        init_s = time.perf_counter() - t0
        try:
            res = on_ray(files, a, workers, cpus)
        finally:
            ray.shutdown()
        res.update(init_s=init_s, workers=workers, cpus_per_worker=cpus)
        out[f"ray {workers} worker{'s' * (workers > 1)}"] = res
        print(kind, workers, res, file=sys.stderr, flush=True)
    base = out["one process"]
    for res in out.values():
        res["ratio"] = res["per_s"] / base["per_s"]
        res["steady_ratio"] = res["steady_per_s"] / base["steady_per_s"]
    return out


def main(argv=None):
    import os

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--json", default=None)
    b = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    scratch = tempfile.TemporaryDirectory()  # the batch goes when the benchmark ends
    ims, vids = make_batch(Path(scratch.name), b.images, b.clips, b.frames)
    a = cli.parser().parse_args(["-", "--every", str(b.every), "--detector", "yunet", "--threads", "2",
                                 *[f"--weights={k}={Path(b.weights_dir) / k}" for k in MODEL_KEYS]])
    from fer_core.predict import Analyzer

    Analyzer.from_pretrained(cli.weight_names(a), detector="yunet", device="cpu")  # the ONNX files built, if not yet
    modes = [(1, 2.0), (2, 1.0)]
    res = {"date": time.strftime("%Y-%m-%d"), "images": b.images, "clips": b.clips, "frames_per_clip": b.frames,
           "every": b.every, "size": "clips 640x480; photos 512x600 and 512x512",
           "images_per_s": measure("images", ims, a, modes), "frames_per_s": measure("frames", vids, a, modes)}
    if b.json:
        Path(b.json).write_text(json.dumps(res, indent=2))
    for kind in ("images_per_s", "frames_per_s"):
        for mode, r in res[kind].items():
            print(f"{kind:13s} {mode:14s} {r['per_s']:6.2f}/s end to end (ratio {r['ratio']:.2f}), "
                  f"{r['steady_per_s']:6.2f}/s steady (ratio {r['steady_ratio']:.2f})")
    return res


if __name__ == "__main__":
    main()
