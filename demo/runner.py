"""Where the page's analyses run: this machine (its CPU, or its GPU: ``FER_DEVICE``, default auto), or, on a
Hugging Face ZeroGPU Space, a GPU lent for the length of each call.

On ZeroGPU (``SPACES_ZERO_GPU`` set), a photo's analysis runs inside a ``@spaces.GPU`` function whose duration
is sized to the work (:func:`gpu_seconds`); the ``spaces`` package is imported only then. Live webcam frames are
read on the Space's own CPU instead: every GPU call is charged to the visitor's daily ZeroGPU quota (2 minutes
for an anonymous visitor) and pays the lending round trip, so a webcam streaming several frames a second would
spend an anonymous visitor's quota within a few minutes, and wait on the queue for each frame; without maps a
frame costs about 45 ms on two CPU cores (BENCHMARKS.md), fast enough to stay live.
"""
from __future__ import annotations

import importlib
import os

from fer_core.predict import Analyzer
from fer_core.results import Analysis

GPU_BASE_S = 10  # lending, CUDA start-up on the first call, decoding and detection
GPU_PER_FACE_S = {True: 1.5, False: 0.5}  # per face the analyzer may read, with / without maps


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU", "").strip())


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


def gpu_seconds(analyzer: Analyzer):
    """The duration of a photo's GPU call, from what it will do: the faces it may read (up to ``max_faces``),
    with or without maps."""

    def duration(image, maps: bool = False, **kw) -> int:
        return int(round(GPU_BASE_S + GPU_PER_FACE_S[bool(maps)] * analyzer.max_faces))

    return duration


class ZeroGpuRunner(Runner):
    """Photos on a lent GPU (a copy of the models on ``device``), live frames on the Space's CPU."""

    def __init__(self, analyzer: Analyzer, spaces_module=None, device: str = "cuda"):
        super().__init__(analyzer)
        spaces = spaces_module or importlib.import_module("spaces")
        self.gpu = analyzer.to(device)  # on ZeroGPU, CUDA at start-up is emulated until a GPU function runs
        self.analyze_on_gpu = spaces.GPU(duration=gpu_seconds(self.gpu))(self._analyze_on_gpu)

    @property
    def where(self) -> str:
        return "a ZeroGPU GPU for photos, the Space's CPU for live frames"

    def _analyze_on_gpu(self, image, **kw) -> Analysis:
        return self.gpu.analyze(image, **kw)

    def photo(self, image, **kw) -> Analysis:
        return self.analyze_on_gpu(image, **kw)


def make_runner(analyzer: Analyzer) -> Runner:
    return ZeroGpuRunner(analyzer) if on_zero_gpu() else Runner(analyzer)
