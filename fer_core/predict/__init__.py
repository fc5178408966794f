"""The one prediction pipeline shared by the app, the CLI, the cluster path, the benchmarks and the evaluation.

    image -> faces (detect, then crop and align per model config) -> models (calibrated probabilities, Grad-CAM,
    own attention; a fusion reuses its branches' forward passes) -> an :class:`~fer_core.results.Analysis`

Its parts: :mod:`.analyzer` (the :class:`Analyzer`: models, detector, the pipeline), :mod:`.slot` (one loaded model
with its data config), :mod:`.engines` (eager torch, ONNX Runtime, bfloat16 for the maps), :mod:`.maps` (Grad-CAM
and own attention in one backward pass), :mod:`.cli` (``fer-predict``, ``python -m fer_core.predict``) with
:mod:`.batch` (what each input of a batch yields), and the batch on a Ray cluster: :mod:`.cluster` (the driver) and
:mod:`.worker` (the models held once per worker); the records they produce are written by :mod:`fer_core.records`.
"""
from ..hardware import resolve_device
from .analyzer import MODEL_KEYS, Analyzer
from .engines import MAPS_DTYPES
from .slot import Slot, view_logits

__all__ = ["MAPS_DTYPES", "MODEL_KEYS", "Analyzer", "Slot", "resolve_device", "view_logits"]
