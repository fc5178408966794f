"""Where the page's analyses run: this machine (its CPU, or its GPU: ``FER_DEVICE``, default auto), or, on a
Hugging Face ZeroGPU Space, a GPU lent for the length of each call.

On ZeroGPU (what the ``spaces`` package decides: ``SPACES_ZERO_GPU`` is 1, t or true), a photo's analysis runs
inside a ``@spaces.GPU`` function whose duration is sized to the work (:func:`gpu_seconds`), on models placed on
``cuda`` once at start-up, as ZeroGPU's docs show. Live webcam frames and clips are read on the Space's own CPU
instead, in a concurrency lane of their own (:meth:`Runner.lanes`): every GPU call is charged to the visitor's
daily ZeroGPU quota (2 minutes for an anonymous visitor) and pays the lending round trip, so a webcam streaming
several frames a second would spend an anonymous visitor's quota within a few minutes; and a photo waiting for a
GPU must not hold up the frames of someone else's webcam.
"""
from __future__ import annotations

import importlib
import os

from fer_core.predict import Analyzer
from fer_core.results import Analysis

GPU_BASE_S = 10  # lending, CUDA start-up on the first call, decoding and detection
GPU_PER_FACE_S = {True: 1.5, False: 0.5}  # per face the analyzer may read, with / without maps
ZERO_GPU_VALUES = ("1", "t", "true")  # what the spaces package reads as on (spaces/config.py), any case


def on_zero_gpu() -> bool:
    """Whether this is a ZeroGPU Space, by the ``spaces`` package's own rule (Gradio's own check wants exactly
    ``true``, which is what the Hub sets)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ZERO_GPU_VALUES


def cpu_concurrency() -> int:
    """How many analyses the CPU runs at once: ``FER_CONCURRENCY``, else the cores over the threads each analysis
    uses (one on a 2-core machine with 2 threads)."""
    import torch

    if os.environ.get("FER_CONCURRENCY"):
        return max(1, int(os.environ["FER_CONCURRENCY"]))
    return max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))


class Runner:
    """Runs the two kinds of analysis the page asks for on one analyzer (its device)."""

    def __init__(self, analyzer: Analyzer):
        self.analyzer = analyzer

    @property
    def where(self) -> str:
        return f"this machine's {self.analyzer.device.type.upper()}"

    def photo(self, image, **kw) -> Analysis:
        return self.analyzer.analyze(image, **kw)

    def live(self, frame, **kw) -> Analysis:
        return self.analyzer.analyze(frame, **kw)

    def lanes(self, concurrency: int) -> dict[str, dict]:
        """The concurrency group of each kind of event: ``photo`` (photos, the API, the examples: :meth:`photo`)
        and ``cpu`` (live frames and clips: :meth:`live` and the analyzer). Here one group for both, of
        ``concurrency`` analyses at once, since both compete for the same device."""
        group = {"concurrency_id": "analysis", "concurrency_limit": concurrency}
        return {"photo": group, "cpu": group}


def gpu_seconds(analyzer: Analyzer):
    """The duration of a photo's GPU call, from what it will do: the faces it may read (up to ``max_faces``),
    with or without maps."""

    def duration(image, maps: bool = False, **kw) -> int:
        return int(round(GPU_BASE_S + GPU_PER_FACE_S[bool(maps)] * analyzer.max_faces))

    return duration


class ZeroGpuRunner(Runner):
    """Photos on a lent GPU (``gpu``: the models built on ``cuda`` at start-up), live frames on the Space's CPU
    (``analyzer``), each kind of event in a lane of its own."""

    def __init__(self, analyzer: Analyzer, gpu: Analyzer, spaces_module=None):
        super().__init__(analyzer)
        spaces = spaces_module or importlib.import_module("spaces")
        self.gpu = gpu
        self.analyze_on_gpu = spaces.GPU(duration=gpu_seconds(gpu))(self._analyze_on_gpu)

    @property
    def where(self) -> str:
        return "a ZeroGPU GPU for photos, the Space's CPU for live frames"

    def _analyze_on_gpu(self, image, **kw) -> Analysis:
        return self.gpu.analyze(image, **kw)

    def photo(self, image, **kw) -> Analysis:
        return self.analyze_on_gpu(image, **kw)

    def lanes(self, concurrency: int) -> dict[str, dict]:
        """Photos wait for a lent GPU in their own lane (``FER_GPU_CONCURRENCY`` calls at once, default 1: ZeroGPU
        queues the Space's calls itself); live frames and clips keep a CPU lane of ``concurrency``, so that a
        photo waiting for a GPU never holds up a webcam."""
        gpu = max(1, int(os.environ.get("FER_GPU_CONCURRENCY") or 1))
        return {"photo": {"concurrency_id": "gpu", "concurrency_limit": gpu},
                "cpu": {"concurrency_id": "cpu", "concurrency_limit": concurrency}}


def build_runner(load) -> tuple[Runner | None, str | None]:
    """The page's runner from ``load(device) -> Analyzer``; ``(None, error)`` when the weights cannot be had.

    Off ZeroGPU: one analyzer on ``FER_DEVICE``. On ZeroGPU the CPU analyzer for live frames is built on a thread
    of its own, outside the torch-function mode that the ``spaces`` package sets on the thread that imported it
    (there every torch call is intercepted, and a deep copy of a model walks all tensors copied so far at each
    tensor); then, on this thread, a second copy of the weights is placed on ``cuda`` once, which the package
    emulates until a GPU is lent."""
    from concurrent.futures import ThreadPoolExecutor

    from fer_core.weights import WeightsError

    try:
        if not on_zero_gpu():
            return Runner(load(os.environ.get("FER_DEVICE", "auto"))), None
        with ThreadPoolExecutor(1) as pool:
            analyzer, models = pool.submit(lambda: (load("cpu"), Analyzer.load_models())).result()
        gpu = Analyzer(models, detector=analyzer.detector, max_faces=analyzer.max_faces, min_face=analyzer.min_face,
                       device="cuda", engine="torch")
        gpu.detector_note = analyzer.detector_note
        return ZeroGpuRunner(analyzer, gpu), None
    except WeightsError as e:
        return None, str(e)
