"""Which device a model runs on, and which precision it trains (and reads) fastest in without emulation.

bf16 autocast pays on GPUs and on CPUs whose instruction set computes in bf16 natively (x86 AVX512-BF16 or
AMX-BF16, Arm BF16 / SVE-BF16): there oneDNN's bf16 convolutions run at about twice the fp32 rate. On other CPUs
PyTorch would emulate bf16 through fp32 and run slower than fp32 itself, so ``auto`` keeps fp32 there.
"""
from __future__ import annotations

import os
import platform

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")
AMP_CHOICES = ("auto", "bf16", "fp16", "off")


def resolve_device(device="auto") -> torch.device:
    """``auto`` (``FER_DEVICE`` when set, else CUDA where there is one, else the CPU), or a device name."""
    name = str(device)
    if name == "auto":
        name = os.environ.get("FER_DEVICE", "").strip() or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA device here (use cpu or auto)")
    return dev


def cpu_has_native_bf16() -> bool:
    caps = torch.cpu.get_capabilities()
    return any(bool(caps.get(flag, False)) for flag in NATIVE_BF16_FLAGS)


def resolve_amp(amp: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on CUDA and on CPUs with native bf16, else ``off``; other values pass through."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {amp!r}")
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "off"


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def device_description(device: torch.device) -> str:
    """For provenance: the GPU's name, or the CPU's model, torch's thread count and whether bf16 is native."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu: {model}, {torch.get_num_threads()} threads, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}"
