"""The command line: the faces of images, folders and videos, read by the three models, in one process or on a Ray
cluster.

    fer-predict photo.jpg [more.jpg folder/ clip.mp4] [--json out.json] [--csv out.csv] [--every 10]
    python -m fer_core.predict ...                                      # the same
    fer-predict interviews/ --json out.json --cluster local --workers 2   # the same records, on a local Ray cluster
    fer-predict interviews/ --json out.json --cluster auto                # on the Ray cluster this machine is in

Images and folders give one JSON record per image; a video gives one record per n-th frame (``--every``), read whole
(the page's length limits are the page's), and ``--csv`` writes one row per face, model and frame. Models default to
the shipped weights (``ddamfn``, ``resnet_dda``, ``fusion``); ``--weights key=PATH`` points a key elsewhere. Records
are written as they are made, in input order (:class:`fer_core.records.RecordWriter`); an input that cannot be read
is reported by name, the rest is written, and the exit status is 1; a summary of what was read ends the run (on
stderr). ``--cluster`` reads the inputs on Ray workers (:mod:`.cluster`, the ``cluster`` extra; docs/cluster.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..images import ImageInputError
from ..records import RecordWriter
from .analyzer import MODEL_KEYS, Analyzer
from .batch import ReadOptions, Tally, failure, inputs, is_video, maps_folder, print_record, read_input, weight_names


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fer-predict",
                                 description="Facial expressions of the faces in images, folders and videos.")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--json", default=None, help="write every record here, as it is made (a JSON array)")
    ap.add_argument("--csv", default=None, help="one row per face and model (and frame): top, confidence, each class")
    ap.add_argument("--every", type=int, default=5, help="videos: analyse every n-th frame (faces are tracked)")
    ap.add_argument("--maps", action="store_true",
                    help="images: also Grad-CAM and own attention, written as PNGs beside the JSON (slower)")
    ap.add_argument("--balanced", action="store_true", help="the balanced reading (rare classes named more often)")
    ap.add_argument("--whole-image", action="store_true", help="no face found: use the whole image")
    ap.add_argument("--detector", default="auto", choices=("auto", "yunet", "haar"))
    ap.add_argument("--weights", action="append", default=[], help="KEY=NAME_OR_PATH, e.g. ddamfn=runs/x/export")
    ap.add_argument("--models", default=",".join(MODEL_KEYS))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("FER_THREADS", "2")),
                    help="torch's threads in this process (a cluster worker uses its --cpus-per-worker)")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (auto: FER_DEVICE, else CUDA if any)")
    c = ap.add_argument_group("cluster", "read the inputs on Ray workers (pip install 'fer-core[cluster]'; "
                                         "docs/cluster.md); the records are the same as in one process")
    c.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="local: start a Ray cluster on this machine for the run and stop it after; auto: the Ray "
                        "cluster this machine belongs to; or its address (host:6379, ray://host:10001)")
    c.add_argument("--workers", type=int, default=None,
                   help="workers, each holding the models once (default: as many as the cluster's CPUs, or GPUs, "
                        "allow)")
    c.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each worker holds (its torch threads)")
    c.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs each worker holds, its models on cuda (0.5: two workers share a GPU); 0: CPU only")
    return ap


def main(argv=None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    if a.cluster is None and (a.workers is not None or a.gpus_per_worker or a.cpus_per_worker != 1.0):
        ap.error("--workers, --cpus-per-worker and --gpus-per-worker need --cluster (local, auto or an address)")
    if a.every < 1:
        ap.error("--every must be 1 or more")
    files = inputs(a.paths)
    if not files:
        print(f"no images or videos in {', '.join(a.paths)}", file=sys.stderr)
        return 1
    if a.cluster is not None:
        from .cluster import run

        return run(files, a)
    return run_here(files, a)


def run_here(files: list[Path], a) -> int:
    """Every input in this process, one after the other; 1 if an input could not be read."""
    import torch
    from tqdm.auto import tqdm

    from ..video import probe

    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    analyzer = Analyzer.from_pretrained(weight_names(a), detector=a.detector, device=a.device)
    opts, tally = ReadOptions.from_args(a), Tally(len(files))
    with RecordWriter(analyzer.labels, json_out=a.json, csv_out=a.csv, maps_dir=maps_folder(a)) as out:
        for index, path in enumerate(tqdm(files, desc="files", unit="file", disable=len(files) < 2)):
            bar = None
            try:
                if is_video(path):
                    info = probe(path, limits=False)
                    bar = tqdm(total=(info.frames + a.every - 1) // a.every if info.frames else None,
                               desc=path.name, unit="frame")
                tick = bar and (lambda done, total: bar.update(1))
                for rec, analysis in read_input(analyzer, path, opts, progress=tick):
                    rec = out.add(rec, analysis)
                    tally.add(index, rec)
                    if len(files) == 1 and analysis is not None:
                        print_record(rec)
            except ImageInputError as e:
                tally.add(index, out.add(failure(str(path), e)))
            finally:
                if bar is not None:
                    bar.close()
    print(tally.summary(time.perf_counter() - t0, " in one process"), file=sys.stderr)
    return 1 if tally.failed else 0

