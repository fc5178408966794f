"""The command line's batch on a Ray cluster: Ray Data's documented batch-inference pattern (``from_items`` of the
inputs, ``map_batches`` with a callable class on an actor pool, the results iterated on the driver), the records the
same as one process's and written by the driver alone, in input order, each once.

    fer-predict interviews/ --json out.json --cluster local --workers 2     # a Ray cluster on this machine, for the run
    fer-predict interviews/ --json out.json --cluster auto                  # the cluster this machine belongs to
    fer-predict interviews/ --json out.json --cluster ray://head:10001 --gpus-per-worker 0.5

* Each worker (:class:`~.worker.Worker`) loads the models and the face detector once, from its own disk, and keeps
  them; it reads one input per call (an image, or a whole video: its faces' tracks stay whole) and yields its
  records as they are made (a video's in runs of 8). Each yield is a block of its own (``target_max_block_size``),
  so records stream to the driver while a long video is still being read.
* Order: ``preserve_order``: the records come in input order, a video's in frame order; the driver writes them
  through :class:`~fer_core.records.RecordWriter` (JSON, CSV, and the maps the workers send back as PNG bytes).
* Faults: Ray Data restarts a worker whose process dies and runs its input again; Ray's streaming generators skip
  the outputs the driver already has, and the driver keeps each ``(input, record)`` once besides (:func:`once`).
  An input that cannot be read is a record of its failure (reported by name, the rest written, exit status 1).
* Ray is the ``cluster`` extra (``pip install -e '.[cluster]'``); asking for ``--cluster`` without it says so.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..records import RecordWriter
from .batch import ReadOptions, Tally, maps_folder, print_record, weight_names
from .worker import Worker, from_row

EXTRA = "pip install -e '.[cluster]' (or pip install -r requirements-cluster.txt)"
LOCAL_OBJECT_STORE = 512 << 20  # a local cluster's shared memory for blocks in flight (Ray spills beyond it)


class ClusterError(RuntimeError):
    """A cluster that cannot run the batch as asked (no Ray, no GPU, too few resources)."""


def require_ray():
    """The ``ray`` module, or a :class:`ClusterError` naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data: ray[data])
    except ImportError as e:
        raise ClusterError(f"--cluster needs Ray with Ray Data, the 'cluster' extra: {EXTRA} ({e})") from e
    return ray


@dataclass(frozen=True)
class Spec:
    """Where and on what the batch runs: ``address`` (``local``, ``auto``, ``host:port``, ``ray://host:port``),
    ``workers`` (None: as many as the cluster's CPUs, or GPUs, allow) and each worker's CPUs and GPUs."""

    address: str
    workers: int | None = None
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise ClusterError(f"--workers must be 1 or more, got {self.workers}")
        if self.cpus <= 0:
            raise ClusterError(f"--cpus-per-worker must be above 0, got {self.cpus}")
        if self.gpus < 0 or (self.gpus > 1 and self.gpus != int(self.gpus)):
            raise ClusterError(f"--gpus-per-worker must be a fraction of one GPU or a whole number, got {self.gpus}")

    @property
    def local(self) -> bool:
        return self.address == "local"

    @property
    def device(self) -> str:
        """Where a worker's models run: cuda on the GPU Ray gives it, else the CPU."""
        return "cuda" if self.gpus > 0 else "cpu"


def gpus_needed(workers: int, gpus: float) -> int:
    """GPUs that ``workers`` workers of ``gpus`` each need (fractions pack: 0.5 is two workers per GPU)."""
    if gpus <= 0:
        return 0
    return math.ceil(workers / math.floor(1 / gpus)) if gpus <= 1 else workers * int(gpus)


def pool_size(spec: Spec, resources: dict) -> int:
    """The number of workers, checked against the cluster's resources (``ray.cluster_resources()``): a clear error
    where the cluster has no GPU for ``--gpus-per-worker``, or (a local cluster, which cannot grow) too few."""
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    fit = max(1, math.floor(cpus / spec.cpus + 1e-9))
    if spec.gpus > 0:
        if gpus == 0:
            raise ClusterError(f"--gpus-per-worker {spec.gpus:g}: the cluster has no GPU (it has {cpus:g} CPUs); "
                               "leave the flag out to read on CPUs, or add GPU nodes")
        fit = min(fit, max(1, math.floor(gpus * math.floor(1 / spec.gpus)) if spec.gpus <= 1
                           else math.floor(gpus / spec.gpus)))
    workers = spec.workers or fit
    short = []
    if workers * spec.cpus > cpus + 1e-9:
        short.append(f"{workers * spec.cpus:g} CPUs (it has {cpus:g})")
    if gpus_needed(workers, spec.gpus) > gpus:
        short.append(f"{gpus_needed(workers, spec.gpus)} GPUs (it has {gpus:g})")
    if short:
        what = f"{workers} workers of {spec.cpus:g} CPUs and {spec.gpus:g} GPUs need " + " and ".join(short)
        if spec.local:
            raise ClusterError(what)
        print(f"{what}: waiting for the cluster to grow", file=sys.stderr)
    return workers


def init_kwargs(spec: Spec) -> dict:
    """``ray.init``'s arguments: a local cluster sized for the workers (no dashboard; workers' logs stay in the
    session's log folder), or the existing cluster at ``address``."""
    quiet = {"log_to_driver": False, "logging_level": "ERROR"}
    if not spec.local:
        return {"address": spec.address, **quiet}
    cpus = math.ceil(spec.workers * spec.cpus) if spec.workers else os.cpu_count()
    return {"address": "local", "num_cpus": cpus, "include_dashboard": False,
            "object_store_memory": LOCAL_OBJECT_STORE, **quiet}


@contextlib.contextmanager
def connected(spec: Spec):
    """Ray, connected as ``spec`` says for the block (a local cluster is started, then stopped); a process that is
    connected already (``ray.init`` called by a program that uses this module) keeps its connection."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(**init_kwargs(spec))
    except ConnectionError as e:
        raise ClusterError(f"no Ray cluster at {spec.address!r}: {e}") from e
    try:
        yield ray
    finally:
        ray.shutdown()


def worker_config(a, spec: Spec) -> dict:
    """What each worker is built from: the weights (a path that exists here made absolute, for workers whose working
    folder is not this one; a name resolved on the worker), the detector, the device and the reading options."""
    names = {k: str(Path(v).resolve()) if Path(v).exists() else v for k, v in weight_names(a).items()}
    return {"weights": names, "detector": a.detector, "device": spec.device, "threads": max(1, int(spec.cpus)),
            "read": asdict(ReadOptions.from_args(a))}


def map_kwargs(spec: Spec, workers: int, config: dict) -> dict:
    """``map_batches``' arguments: one input per call (an int batch size, as GPUs require), the workers' pool (one
    input in flight each), the CPUs and GPUs each holds."""
    import ray.data

    # one input in flight per worker: inputs run from one image to an hour of video, and an input queued behind a
    # long video would wait for it while another worker idles (Ray's default queues a second one per worker)
    pool = ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1)
    kw = {"fn_constructor_args": (config,), "batch_size": 1, "num_cpus": spec.cpus, "compute": pool}
    if spec.gpus > 0:
        kw["num_gpus"] = spec.gpus
    return kw


def once(outputs):
    """Each ``(input, record)`` once: outputs come in input order and a record's place among its input's (Ray's
    order), so an output at or before the last one kept is one a retried input made again."""
    last = (-1, -1)
    for out in outputs:
        key = (out.index, out.seq)
        if key <= last:
            continue
        last = key
        yield out


def stream(files: list[Path], spec: Spec, workers: int, config: dict):
    """The :class:`~.worker.Output` of every record of ``files``, in input order, each once, as the workers make
    them (Ray connected)."""
    import ray.data

    for handler in logging.getLogger("ray.data").handlers:  # its console says little a user needs (progress bars
        if type(handler).__name__ != "SessionFileHandler":  # off, executions ended); its log file keeps all of it
            handler.setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False  # the driver shows its own (files and records)
    ctx.print_on_execution_start = False
    ctx.target_max_block_size = 1  # every row a worker yields is a block: it streams out as it is made
    items = [{"index": i, "path": str(p.resolve()), "name": str(p)} for i, p in enumerate(files)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(Worker, **map_kwargs(spec, workers, config))
    yield from once(out for row in ds.iter_rows() for out in from_row(row))


def run(files: list[Path], a) -> int:
    """The command line's ``--cluster`` path: 0 when every input was read, 1 when some could not be, 2 when the
    cluster could not run the batch (what was written before stays written)."""
    t0, stdout = time.perf_counter(), sys.stdout
    try:
        spec = Spec(a.cluster, a.workers, a.cpus_per_worker, a.gpus_per_worker)
        # Ray's own messages go to stdout: they go to stderr here, so stdout holds only what the command prints
        with contextlib.redirect_stdout(sys.stderr), connected(spec) as ray:
            workers = pool_size(spec, ray.cluster_resources())
            tally, seen = write_all(stream(files, spec, workers, worker_config(a, spec)), len(files), a,
                                    stdout if len(files) == 1 else None)
    except ClusterError as e:
        print(f"fer-predict: {e}", file=sys.stderr)
        return 2
    where = f" on {workers} Ray worker{'s' * (workers != 1)} ({len(seen)} worker processes)"
    print(tally.summary(time.perf_counter() - t0, where), file=sys.stderr)
    return 1 if tally.failed else 0


def write_all(outputs, total: int, a, stdout=None) -> tuple[Tally, set]:
    """Write every output through one :class:`RecordWriter` (opened at the first, which names the labels), with a
    progress bar over the files; ``stdout``: print an image's faces there. Returns the tally and the workers seen."""
    from tqdm.auto import tqdm

    tally, seen, out = Tally(total), set(), None
    bar = tqdm(total=total, desc="files", unit="file", disable=total < 2)
    try:
        for o in outputs:
            if out is None:
                out = RecordWriter(o.labels, json_out=a.json, csv_out=a.csv, maps_dir=maps_folder(a))
            rec = out.add(o.record, pngs=o.pngs)
            if tally.add(o.index, rec):
                bar.update(o.index - bar.n)  # the inputs before this one are done
            bar.set_postfix(records=out.count, refresh=False)
            seen.add(o.worker)
            if stdout is not None and "faces" in rec and rec.get("frame") is None:
                with contextlib.redirect_stdout(stdout):
                    print_record(rec)
        bar.update(total - bar.n)
        if out is None:  # no record came: the outputs asked for exist all the same
            out = RecordWriter([], json_out=a.json, csv_out=a.csv, maps_dir=maps_folder(a))
    except Exception as e:
        if type(e).__module__.split(".")[0] != "ray":
            raise
        raise ClusterError(f"the cluster stopped the batch: {str(e).strip().splitlines()[-1]}") from e
    finally:
        bar.close()
        if out is not None:
            out.close()
    return tally, seen
