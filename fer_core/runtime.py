"""An ONNX Runtime path for reading faces (no maps: live frames, video, the API, the CLI).

Each weight is exported once (``torch.onnx``, opset 17, a dynamic batch) to a graph that returns its logits and
pooled features (what a fusion needs from its branches), optimised offline by ONNX Runtime at its basic level
(constant folding, BatchNorm folded into the convolutions: standard ONNX operators, so the file serves any
runtime), and cached as ``model-<sha256 of the tensors, 16 hex>-g<GRAPH_VERSION>.onnx`` with its tensors in
``.onnx.data`` beside it (ONNX's external-data format: a session maps them instead of holding a second copy;
rebuilt when the tensors change) in ``FER_ONNX_CACHE`` (default ``~/.cache/fer/onnx``), one folder per weights
folder. Every
session checks itself against the torch model on a fixed random batch when it is built: logits within
``TOLERANCE`` or the Analyzer keeps torch for that model (and says so). The torch path stays for training and
for maps (Grad-CAM needs a backward pass).

    python -m fer_core.runtime weights/ddamfn weights/resnet_dda    # build (or find) their ONNX files
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .files import atomic_output
from .weights import weights_sha256

OPSET = 17
GRAPH_VERSION = 2  # how the models are written as a graph (2: MixConv as one depthwise conv); in the file's name
TOLERANCE = 1e-3  # max |logit difference| against torch, on the self-check batch


class _Reader(nn.Module):
    """What ONNX runs: the image -> (logits, pooled features)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        d = self.model.forward_details(x)
        return d["logits"], d["pooled"]


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_path(model) -> Path:
    """Where the ONNX file of these weights lives: in ``FER_ONNX_CACHE`` (default ``~/.cache/fer/onnx``), in a
    folder of its own per weights folder, not in it (its float32 tensors would triple ``weights/``)."""
    sha = weights_sha256(model)
    if not sha:
        raise ValueError("the model was not loaded from a weights folder: no sha256 to name its ONNX file by")
    folder = str(Path(getattr(model, "weights_dir", "") or "").resolve())
    cache = Path(os.environ.get("FER_ONNX_CACHE") or Path.home() / ".cache" / "fer" / "onnx")
    return cache / f"{model.arch_name}-{hashlib.sha256(folder.encode()).hexdigest()[:12]}" / \
        f"model-{sha[:16]}-g{GRAPH_VERSION}.onnx"


def export_onnx(model, size: int, path: Path) -> Path:
    """Export ``model`` (eval mode, float32, on the CPU) for ``size`` x ``size`` inputs, optimise it at ONNX
    Runtime's basic level and write it atomically to ``path``."""
    import onnxruntime as ort

    was = model.training
    reader = _Reader(model).eval()
    buf = io.BytesIO()
    x = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        reader(x)  # builds what a model caches for inference (DDAMFN's merged MixConv kernels): constants in the trace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(reader, (x,), buf, input_names=["x"], output_names=["logits", "pooled"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}, "pooled": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    model.train(was)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + ".data")  # the tensors, beside the graph: ORT maps them instead of copying
    with atomic_output(path) as tmp:  # the graph appears last, whole; a reader never sees it without its tensors
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(tmp)
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", data.name)
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    stem = path.name.split("model-")[0] + "model-"
    for old in list(path.parent.glob(stem + "*.onnx")) + list(path.parent.glob(stem + "*.onnx.data")):
        if old not in (path, data):
            old.unlink(missing_ok=True)  # the ONNX files of earlier tensors
    return path


class OnnxReader:
    """An ONNX Runtime session of one weight: ``(x) -> {"logits", "pooled"}`` as torch tensors."""

    def __init__(self, path: Path, threads: int | None = None, device: str = "cpu", spin: bool | None = None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.inter_op_num_threads = 1
        # idle threads sleep rather than spin (FER_ORT_SPIN=1 spins): spinning saves ~3 ms of DDAMFN's ~16 on a
        # machine that does nothing else, but when anything shares the cores (a browser, another request) the
        # spinning threads take their time and the live tab's readings halve (BENCHMARKS: "Spinning threads")
        spin = os.environ.get("FER_ORT_SPIN", "0") == "1" if spin is None else spin
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), so, providers=providers)

    def __call__(self, x: torch.Tensor) -> dict:
        logits, pooled = self.session.run(None, {"x": np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)})
        return {"logits": torch.from_numpy(logits), "pooled": torch.from_numpy(pooled)}


def onnx_reader(model, size: int, threads: int | None = None, device: str = "cpu") -> tuple[OnnxReader | None, str]:
    """The ONNX session of ``model`` (built and cached on first use), checked against torch; or None and why."""
    if not available():
        return None, "onnxruntime is not installed"
    try:
        path = cache_path(model)
        if not path.is_file():
            export_onnx(model, size, path)
            _release_freed_memory()  # tracing the export allocates a lot, once: give it back to the system
        reader = OnnxReader(path, threads, device)
    except Exception as e:  # noqa: BLE001  (an exporter or runtime that cannot handle the model: torch stays)
        return None, f"ONNX export or session failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    gap = self_check(model, reader, size)
    if gap > TOLERANCE:
        return None, f"ONNX logits differ from torch by {gap:.2e} (> {TOLERANCE})"
    return reader, ""


def _release_freed_memory() -> None:
    """Return the C heap's freed pages to the system (glibc's malloc_trim; nothing elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def self_check(model, reader: OnnxReader, size: int) -> float:
    """The largest |logit difference| between torch and ONNX on a fixed random batch of two."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size, generator=g)
    device = next(model.parameters()).device
    with torch.inference_mode():
        ref = model(x.to(device)).float().cpu()
    return float((reader(x)["logits"] - ref).abs().max())


def main(argv=None):
    import argparse

    from .preprocess import resolve_data_config
    from .weights import load_weights

    ap = argparse.ArgumentParser(description="Build (or find) the ONNX files of weights folders.")
    ap.add_argument("weights", nargs="+")
    a = ap.parse_args(argv)
    for w in a.weights:
        model = load_weights(w)
        dc = resolve_data_config(model)
        if len(dc.input_sizes) > 1:
            print(f"{w}: a fusion runs from its branches' ONNX files and its own small torch head")
            continue
        reader, why = onnx_reader(model, dc.input_size)
        print(f"{w}: {reader.path if reader else why}")


if __name__ == "__main__":
    main()
