"""An ONNX Runtime path for reading faces (live frames, video, the API, the CLI) and for most of the maps' forward.

Each weight is exported (``torch.onnx``, opset 17, a dynamic batch) in two parts, split at Grad-CAM's target: the
``prefix`` (the image -> what ``forward_prefix`` returns: the activations at the target, ``act``, and the earlier
attention maps) and the ``suffix`` (``act`` -> the logits and the pooled features a fusion needs from its branches).
A reading chains the two (:class:`OnnxChain`); the maps run the prefix alone and torch the rest
(``forward_suffix``) with its backward; so ONNX Runtime holds each weight once (docs/memory.md). Each file is
optimised offline by ONNX Runtime at its basic level (constant folding, BatchNorm folded into the convolutions:
standard ONNX operators, so the file serves any runtime) and cached as
``<part>-<sha256 of the tensors, 16 hex>-g<GRAPH_VERSION>.onnx`` with its tensors in ``.onnx.data`` beside it
(ONNX's external-data format; rebuilt when the tensors change) in ``FER_ONNX_CACHE`` (default
``~/.cache/fer/onnx``), one folder per weights folder (its ``source`` file names that folder; building a file
removes the cache's folders whose weights folder is gone, so temporary weights leave nothing behind). The whole
reading in one graph (``model-...``) is built on demand only (bench/int8.py). Every session checks itself against
the torch model on a fixed random batch when it is built (and a chain end to end): outputs within ``TOLERANCE`` or
the Analyzer keeps torch for that part (and says so). The torch path stays for training and for the part of the
maps that needs a backward pass.

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

from .files import atomic_output, write_text_atomic
from .weights import weights_sha256

OPSET = 17
GRAPH_VERSION = 2  # how the models are written as a graph (2: MixConv as one depthwise conv); in the file's name
TOLERANCE = 1e-3  # max |logit difference| against torch, on the self-check batch


class _Reader(nn.Module):
    """What ONNX runs to read a face: the image -> (logits, pooled features)."""

    input_name = "x"
    outputs = ("logits", "pooled")

    def __init__(self, model, size: int | None = None):
        super().__init__()
        self.model, self.size = model, size

    def example(self, batch: int = 2, generator=None) -> torch.Tensor:
        return torch.randn(batch, 3, self.size, self.size, generator=generator)

    def forward(self, x):
        d = self.model.forward_details(x)
        return d["logits"], d["pooled"]


class _Prefix(_Reader):
    """What ONNX runs for the maps: the image -> the tensors of ``model.forward_prefix`` (the part before Grad-CAM's
    target's output; torch runs the rest, :meth:`forward_suffix`, with its backward), flattened to ``a.b`` names."""

    def __init__(self, model, size: int):
        super().__init__(model, size)
        with torch.no_grad():
            self.outputs = tuple(_flatten(model.forward_prefix(torch.zeros(1, 3, size, size))))

    def forward(self, x):
        flat = _flatten(self.model.forward_prefix(x))
        return tuple(flat[k] for k in self.outputs)


class _Suffix(_Reader):
    """The rest of a reading, after the prefix: the activations at Grad-CAM's target (``act``) -> (logits, pooled
    features). Chained after the prefix (:class:`OnnxChain`) it reads a face, so that ONNX Runtime holds each weight
    once (the maps need the prefix alone: torch runs the suffix there, with its backward)."""

    input_name = "act"

    def __init__(self, model, size: int):
        super().__init__(model, size)
        with torch.no_grad():
            pre = model.forward_prefix(torch.zeros(1, 3, size, size))
        self.constants = {k: v for k, v in pre.items() if not isinstance(v, (torch.Tensor, dict))}  # (the stage)
        self.shape = tuple(pre["act"].shape[1:])

    def example(self, batch: int = 2, generator=None) -> torch.Tensor:
        x = super().example(batch, generator)
        with torch.no_grad():
            return self.model.forward_prefix(x)["act"]

    def forward(self, act):
        d = self.model.forward_suffix({**self.constants, "act": act})
        return d["logits"], d["pooled"]


# what each ONNX file of a weight holds, by its name's first word: the app reads with prefix + suffix and runs the
# prefix alone for the maps; ``model`` (the whole reading in one graph) is built on demand (bench/int8.py)
PARTS = {"prefix": _Prefix, "suffix": _Suffix, "model": _Reader}


def _flatten(d: dict, stem: str = "") -> dict:
    """The tensors of a nested dict, keyed ``a.b``; other values are left out."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{stem}{k}."))
        elif isinstance(v, torch.Tensor):
            out[f"{stem}{k}"] = v
    return out


def _nest(flat: dict) -> dict:
    out = {}
    for k, v in flat.items():
        *path, last = k.split(".")
        d = out
        for p in path:
            d = d.setdefault(p, {})
        d[last] = v
    return out


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_path(model, part: str = "model") -> Path:
    """Where an ONNX file of these weights lives (``part``: ``prefix``, ``suffix`` or ``model``, :data:`PARTS`):
    in ``FER_ONNX_CACHE`` (default ``~/.cache/fer/onnx``), in a folder of its own per weights folder, not in it
    (their float32 tensors would triple ``weights/``)."""
    sha = weights_sha256(model)
    if not sha:
        raise ValueError("the model was not loaded from a weights folder: no sha256 to name its ONNX file by")
    cache = Path(os.environ.get("FER_ONNX_CACHE") or Path.home() / ".cache" / "fer" / "onnx")
    return cache / f"{model.arch_name}-{hashlib.sha256(_weights_folder(model).encode()).hexdigest()[:12]}" / \
        f"{part}-{sha[:16]}-g{GRAPH_VERSION}.onnx"


def _weights_folder(model) -> str:
    """The resolved weights folder ``model`` was loaded from: what its cache folder is named after and records."""
    return str(Path(getattr(model, "weights_dir", "") or "").resolve())


def export_onnx(model, size: int, path: Path, part: str = "model") -> Path:
    """Export ``part`` of ``model`` (eval mode, float32, on the CPU) for ``size`` x ``size`` inputs, optimise it at
    ONNX Runtime's basic level and write it atomically to ``path``."""
    import onnxruntime as ort

    was = model.training
    model.eval()
    reader = PARTS[part](model, size).eval()
    buf = io.BytesIO()
    x = torch.zeros_like(reader.example())
    with torch.no_grad():
        reader(x)  # builds what a model caches for inference (DDAMFN's merged MixConv kernels): constants in the trace
    names, first = list(reader.outputs), reader.input_name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(reader, (x,), buf, input_names=[first], output_names=names,
                          dynamic_axes={k: {0: "batch"} for k in [first] + names}, opset_version=OPSET, dynamo=False)
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
    stem = path.name.split(f"{part}-")[0] + f"{part}-"
    for old in list(path.parent.glob(stem + "*.onnx")) + list(path.parent.glob(stem + "*.onnx.data")):
        if old not in (path, data):
            old.unlink(missing_ok=True)  # the ONNX files of earlier tensors
    return path


def prune_orphans(cache: Path) -> list[Path]:
    """Remove the folders of ``cache`` whose ``source`` weights folder no longer exists (a run's export, a test's
    temporary weights): their files can never be read again. Returns what it removed."""
    import shutil

    gone = []
    for folder in cache.iterdir() if cache.is_dir() else []:
        source = folder / "source"
        try:
            orphan = source.is_file() and not Path(source.read_text().strip()).exists()
        except OSError:
            continue
        if orphan:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


class OnnxReader:
    """An ONNX Runtime session of one weight's file, as torch tensors: ``(x) -> {"logits", "pooled"}`` (a ``model``
    file), what ``forward_prefix`` returns (a ``prefix`` file), or ``(act) -> {"logits", "pooled"}`` (a ``suffix``
    file)."""

    def __init__(self, path: Path, threads: int | None = None, device: str = "cpu", spin: bool | None = None,
                 prepack: bool = True):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.inter_op_num_threads = 1
        # idle threads sleep rather than spin (FER_ORT_SPIN=1 spins): spinning saved ~3 ms of DDAMFN's ~16 on a
        # machine that did nothing else on one day and cost time on another, and when anything shares the cores (a
        # browser, another request) the spinning threads take their time and the live tab's readings halve
        # (BENCHMARKS: "Inference engines")
        spin = os.environ.get("FER_ORT_SPIN", "0") == "1" if spin is None else spin
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        # ONNX Runtime's copies of some weights in its kernels' layouts: ~15 MB of the branches' ~217, and ResNet+DDA
        # reads 6-8% slower without them (bench/onnx_memory.py, docs/memory.md): kept
        if not prepack:
            so.add_session_config_entry("session.disable_prepacking", "1")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.path, self.threads, self.device, self.spin, self.prepack = Path(path), threads, device, spin, prepack
        self.session = ort.InferenceSession(str(path), so, providers=providers)
        self.input = self.session.get_inputs()[0].name
        self.names = [o.name for o in self.session.get_outputs()]
        self.constants = {}  # what the torch part returns beside tensors (ResNet+DDA's prefix: its target stage)

    def run(self, x: np.ndarray, names=None) -> list[np.ndarray]:
        """The session on a float32 array: its outputs ``names`` (default all), as arrays."""
        return self.session.run(names, {self.input: x})

    def __call__(self, x: torch.Tensor) -> dict:
        out = self.run(np.ascontiguousarray(x.detach().cpu().numpy(), np.float32))
        return {**self.constants, **_nest({k: torch.from_numpy(v) for k, v in zip(self.names, out)})}

    def with_threads(self, threads: int | None, spin: bool | None = None) -> OnnxReader:
        """Another session of the same file on ``threads`` threads (a bench's variants)."""
        return OnnxReader(self.path, threads, self.device, self.spin if spin is None else spin, self.prepack)


class OnnxChain:
    """A face read by a weight's ``prefix`` and ``suffix`` sessions, one after the other (the activations at
    Grad-CAM's target pass between them as an array): ``(x) -> {"logits", "pooled"}``. The maps run the same prefix
    session, so ONNX Runtime holds each weight once."""

    def __init__(self, prefix: OnnxReader, suffix: OnnxReader):
        self.prefix, self.suffix = prefix, suffix
        self.paths = (prefix.path, suffix.path)

    def __call__(self, x: torch.Tensor) -> dict:
        act, = self.prefix.run(np.ascontiguousarray(x.detach().cpu().numpy(), np.float32), ["act"])
        return dict(zip(self.suffix.names, (torch.from_numpy(v) for v in self.suffix.run(act))))

    def with_threads(self, threads: int | None, spin: bool | None = None) -> OnnxChain:
        return OnnxChain(self.prefix.with_threads(threads, spin), self.suffix.with_threads(threads, spin))


def onnx_reader(model, size: int, threads: int | None = None, device: str = "cpu",
                part: str = "model") -> tuple[OnnxReader | None, str]:
    """The ONNX session of ``part`` of ``model`` (built and cached on first use), checked against torch; or None
    and why."""
    if not available():
        return None, "onnxruntime is not installed"
    try:
        path = cache_path(model, part)
        if not path.is_file():
            export_onnx(model, size, path, part)
            write_text_atomic(path.parent / "source", _weights_folder(model))  # a reader never sees half a path
            prune_orphans(path.parent.parent)
            _release_freed_memory()  # tracing the export allocates a lot, once: give it back to the system
        reader = OnnxReader(path, threads, device)
    except Exception as e:  # noqa: BLE001  (an exporter or runtime that cannot handle the model: torch stays)
        return None, f"ONNX export or session failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    gap = self_check(model, reader, size, part)
    if gap > TOLERANCE:
        return None, f"ONNX {'outputs' if part == 'prefix' else 'logits'} differ from torch by {gap:.2e} (> {TOLERANCE})"
    return reader, ""


def onnx_chain(model, size: int, prefix: OnnxReader, threads: int | None = None,
               device: str = "cpu") -> tuple[OnnxChain | None, str]:
    """A reading of ``model`` by its ``prefix`` session and its ``suffix`` one (built and cached on first use),
    checked end to end against torch; or None and why."""
    suffix, why = onnx_reader(model, size, threads, device, part="suffix")
    if suffix is None:
        return None, why
    chain = OnnxChain(prefix, suffix)
    gap = self_check(model, chain, size)
    if gap > TOLERANCE:
        return None, f"ONNX logits (prefix, then suffix) differ from torch by {gap:.2e} (> {TOLERANCE})"
    return chain, ""


def _release_freed_memory() -> None:
    """Return the C heap's freed pages to the system (glibc's malloc_trim; nothing elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def self_check(model, reader, size: int, part: str = "model") -> float:
    """The largest |difference| between torch and ONNX on a fixed random batch of two: of the logits (``model``, a
    chain, ``suffix`` on torch's activations at the target), of every output (``prefix``, whose other values the
    reader takes from torch's)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size, generator=g)
    device = next(model.parameters()).device
    with torch.inference_mode():
        if part == "model":
            return float((reader(x)["logits"] - model(x.to(device)).float().cpu()).abs().max())
        ref = model.forward_prefix(x.to(device))
        if part == "suffix":
            want = model.forward_suffix(ref)["logits"].float().cpu()
            return float((reader(ref["act"])["logits"] - want).abs().max())
    reader.constants = {k: v for k, v in ref.items() if not isinstance(v, (torch.Tensor, dict))}
    got, want = _flatten(reader(x)), _flatten(ref)
    if set(got) != set(want):
        return float("inf")
    return max(float((got[k] - want[k].float().cpu()).abs().max()) for k in want)


def main(argv=None):
    import argparse

    from .preprocess import resolve_data_config
    from .weights import load_weights

    ap = argparse.ArgumentParser(description="Build (or find) the ONNX files of weights folders.")
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--part", action="append", choices=list(PARTS),
                    help="the parts to build (default: prefix and suffix, what the app reads with)")
    a = ap.parse_args(argv)
    for w in a.weights:
        model = load_weights(w)
        dc = resolve_data_config(model)
        if len(dc.input_sizes) > 1:
            print(f"{w}: a fusion runs from its branches' ONNX files and its own small torch head")
            continue
        for part in a.part or ("prefix", "suffix"):
            reader, why = onnx_reader(model, dc.input_size, part=part)
            print(f"{w} ({part}): {reader.path if reader else why}")


if __name__ == "__main__":
    main()
