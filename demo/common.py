"""What the page's tabs share: the models and where they run (:class:`Page`), the concurrency group every
analysing event joins, the choices offered, and an image input that never fails on a bad file."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import gradio as gr

from fer_core.card import balanced_cost
from fer_core.predict import Analyzer
from fer_core.results import display_name

from .runner import Runner, cpu_concurrency, on_zero_gpu

PREDICTED = "predicted class"
READINGS = {"most accurate": "accurate", "balanced: rare classes named more often": "balanced"}
READING_INFO = ("Balanced: the rarer expressions (disgust, fear, contempt) are named more often, at a cost in "
                "accuracy (About the models)")
STATE_TTL_S = 1800  # what the page keeps of a visitor (an analysis, a clip's readings) is dropped after this long


def reading_info(analyzer: Analyzer | None) -> str:
    """The balanced option's text: what it does and, as the headline model's config records it, what it gives and
    costs on FER+ valid (the fusion's when it is loaded)."""
    keys = list(analyzer.shown) if analyzer else []
    key = "fusion" if "fusion" in keys else (keys[0] if keys else None)
    cost = balanced_cost(analyzer.slots[key].model.pretrained_cfg) if key else ""
    if not cost:
        return READING_INFO
    return (f"Balanced: the rarer expressions (disgust, fear, contempt) are named more often. {display_name(key)} "
            f"on FER+ valid, balanced (most accurate): {cost}")


class SafeImage(gr.Image):
    """An image input whose preprocessing never fails on a bad file: the raw upload goes to our own loader,
    which says what is wrong (not an image, empty, truncated, too large ...)."""

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # noqa: BLE001  (Gradio raises many kinds for undecodable files)
            return None if payload is None else payload.path


def analysis_concurrency() -> int:
    """How many analyses the machine runs at once: ``FER_CONCURRENCY``, else one per GPU, else the CPU cores over
    the threads each analysis uses (one on a 2-core machine with 2 threads). On ZeroGPU, where the ``spaces``
    package reports one CUDA device that it lends only inside GPU calls, this is the CPU's figure (the photos'
    lane is the runner's: :meth:`Runner.lanes`)."""
    import torch

    if not os.environ.get("FER_CONCURRENCY") and not on_zero_gpu() and torch.cuda.is_available():
        return torch.cuda.device_count()
    return cpu_concurrency()


@dataclass
class Page:
    """The models behind the page, where they run, and the one concurrency group of every event that runs them
    (so that the queue sees every analysis competing for the machine and its estimates are true)."""

    analyzer: Analyzer | None
    runner: Runner | None
    load_error: str | None = None
    concurrency: int = 1
    keys: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    reading_info: str = READING_INFO  # the balanced option's text, with its measured cost

    @classmethod
    def build(cls, analyzer, load_error=None, concurrency=None, runner=None) -> Page:
        keys = list(analyzer.shown) if analyzer else []
        return cls(analyzer, runner or (Runner(analyzer) if analyzer else None), load_error,
                   concurrency or analysis_concurrency(), keys, analyzer.slots[keys[0]].labels if keys else [],
                   reading_info(analyzer))

    @property
    def group(self) -> dict:
        """The concurrency group of the events that read photos (the photo tab, the API, the examples)."""
        return self._lanes()["photo"]

    @property
    def cpu_group(self) -> dict:
        """The concurrency group of the events that read on this machine's CPU on ZeroGPU (live frames, clips);
        elsewhere the same group as :attr:`group`."""
        return self._lanes()["cpu"]

    def _lanes(self) -> dict:
        return (self.runner or Runner(None)).lanes(self.concurrency)

    def ready(self) -> None:
        if self.analyzer is None:
            raise gr.Error(self.load_error or "no models are loaded")
