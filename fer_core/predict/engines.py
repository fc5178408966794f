"""How the analyzer's models run: eager torch, ONNX Runtime sessions (:mod:`fer_core.runtime`) for reading and for
the part of the maps before each Grad-CAM target, and, where asked (or where ONNX Runtime holds no copy and the CPU
computes bfloat16 natively), a bfloat16 copy of the part after each target for the maps.

Each function fills in the :class:`~fer_core.predict.slot.Slot` objects it is given; the analyzer calls them once,
when it is built."""
from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from ..hardware import cpu_has_native_bf16

ENGINES = ("auto", "onnx", "torch")
MAPS_DTYPES = ("auto", "float32", "bfloat16")  # the maps' part after each Grad-CAM target (attach_lean)


def attach_onnx(slots: dict, readers: list[str], device: torch.device, engine: str) -> tuple[str, list[str]]:
    """ONNX Runtime sessions for the ``readers`` (the slots that run on images: a fusion's head runs on its
    branches'): per model, one session of the part before Grad-CAM's target (``prefix``: the maps run it, torch
    the rest) and one of the rest (``suffix``); a reading without maps chains the two, so that ONNX Runtime holds
    each weight once. ``engine`` auto: on the CPU where onnxruntime is installed and each session matches torch;
    onnx: the same, required; torch: none. Returns the engine in use and notes."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be auto, onnx or torch, got {engine!r}")
    if engine == "torch" or (engine == "auto" and device.type != "cpu"):
        return "torch", []
    from ..runtime import onnx_chain, onnx_reader

    notes = []
    # on the CPU the models read side by side (:func:`each_model`), so the threads are shared out between them:
    # DDAMFN reads as fast on one thread as on two, and two models on one thread each take 1.45x less than
    # one after the other on two (BENCHMARKS: "Inference engines")
    threads = max(1, torch.get_num_threads() // len(readers)) if device.type == "cpu" and readers else None
    for key in readers:
        slot = slots[key]
        slot.prefix, why = onnx_reader(slot.model, slot.size, threads, device=str(device), part="prefix")
        if slot.prefix is not None:
            slot.onnx, why = onnx_chain(slot.model, slot.size, slot.prefix, threads, device=str(device))
        if slot.onnx is None:
            if engine == "onnx":
                raise RuntimeError(f"{key}: {why}")
            notes.append(f"{key} reads with torch: {why}")
        if slot.prefix is None:
            notes.append(f"{key}'s maps run wholly in torch: {why}")
    kind = "onnx" if all(slots[k].onnx is not None for k in readers) else \
        "torch" if all(slots[k].onnx is None for k in readers) else "mixed"
    return kind, notes


def attach_lean(slots: dict, readers: list[str], device: torch.device, maps_dtype: str) -> str:
    """Bfloat16 copies for the maps' part after each Grad-CAM target, of the models that ask for it
    (``maps_in_bfloat16``: where that part reads most of the weights). ``maps_dtype`` auto (``FER_MAPS_DTYPE``
    when set): bfloat16 where the CPU computes it natively and ONNX Runtime holds none of those models' weights
    (engine torch), else float32, so that each weight is held at most twice (docs/memory.md); bfloat16 or float32:
    as said (bfloat16 beside ONNX Runtime: a third copy of those weights, for a photo with maps 1.1-1.4x faster,
    BENCHMARKS "The maps"). The readings without maps never use them. Returns the dtype in use."""
    if maps_dtype == "auto":
        maps_dtype = os.environ.get("FER_MAPS_DTYPE", "").strip() or "auto"
    if maps_dtype not in MAPS_DTYPES:
        raise ValueError(f"maps_dtype must be one of {MAPS_DTYPES}, got {maps_dtype!r}")
    asking = [k for k in readers if getattr(slots[k].model, "maps_in_bfloat16", False)]
    if maps_dtype == "auto":
        native = device.type == "cpu" and cpu_has_native_bf16()
        held = any(slots[k].onnx is not None or slots[k].prefix is not None for k in asking)
        maps_dtype = "bfloat16" if native and not held else "float32"
    if maps_dtype == "bfloat16":
        for key in asking:
            slots[key].lean = bfloat16_copy(slots[key].model)
    return maps_dtype


def bfloat16_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of ``model`` in eval mode with its floating-point tensors in bfloat16, made tensor by tensor (a
    whole float32 copy first would leave its size behind in the allocator)."""
    memo = {id(t): (torch.nn.Parameter(t.detach().to(torch.bfloat16), requires_grad=False)
                    if isinstance(t, torch.nn.Parameter) else t.to(torch.bfloat16))
            for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()}
    return copy.deepcopy(model, memo).eval()


def each_model(keys, run, side_by_side: bool) -> None:
    """``run(key)`` for each model: side by side, each on its share of the threads, when ``side_by_side`` (they
    all run in ONNX Runtime on the CPU, which releases the GIL); else one after the other."""
    if len(keys) > 1 and side_by_side:
        with ThreadPoolExecutor(len(keys) - 1) as pool:
            futures = [pool.submit(run, k) for k in keys[1:]]
            run(keys[0])
            for f in futures:
                f.result()
    else:
        for key in keys:
            run(key)
