"""Weights: ``model.safetensors`` + ``config.json``, saved and loaded strictly.

Where a registered weight is found (``weights/``, ``FER_WEIGHTS_DIR``, the Hub) is :mod:`fer_core.sources`.

A weights folder holds exactly two files the loader reads:

* ``model.safetensors``: the state dict, stored as float32, float16, or per-output-channel int8 (a tensor ``k``
  in int8 with its float32 scales in ``k.__scale__``); small tensors (BatchNorm statistics, biases) stay float32.
* ``config.json``: architecture name and arguments, label names, preprocessing (input size, mean/std,
  grayscale, face crop), temperature, storage dtype, the sha256 of ``model.safetensors``, provenance and
  metrics. A fusion model may reference its branches' weights instead of storing them (``branch_refs``).

Loading is strict: a missing or unexpected tensor, a shape mismatch, a file whose sha256 is not the one its
config records, an unknown architecture, or an unreadable file raises :class:`WeightsError` naming the file and
the problem. No pickle is ever loaded here (official ``.pth`` files go through :mod:`fer_core.convert`).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .files import atomic_output, sha256_file, write_text_atomic  # noqa: F401 (sha256_file re-exported)
from .labels import get_label_set
from .models.registry import create_model, get_entry, model_config_args
from .preprocess import FER_CROP, IMAGENET_MEAN, IMAGENET_STD
from .pretrained import CONFIG_FILE, PRETRAINED, WEIGHTS_FILE, WeightsError, list_pretrained  # noqa: F401 (re-exported)
from .sources import locate_pinned

FORMAT_VERSION = 1
STORAGE_DTYPES = ("float32", "float16", "int8")
SCALE_SUFFIX = ".__scale__"
SMALL_TENSOR = 4096  # tensors with fewer elements stay float32 whatever the storage dtype


# -- saving ------------------------------------------------------------------------------------------------------

def nonfinite_tensors(state: dict) -> dict[str, int]:
    """``{name: count}`` of the floating-point tensors in ``state`` that hold NaN or infinite values."""
    return {k: int((~torch.isfinite(t)).sum()) for k, t in state.items()
            if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())}


def _nonfinite_message(bad: dict[str, int]) -> str:
    names = ", ".join(f"{k} ({n:,})" for k, n in list(bad.items())[:3]) + (" ..." if len(bad) > 3 else "")
    return f"{len(bad)} tensors hold NaN or infinite values: {names}"


def _encode_state(state: dict, storage: str) -> dict:
    out = {}
    for k, t in state.items():
        t = t.detach().cpu().contiguous()
        if not t.is_floating_point() or t.numel() < SMALL_TENSOR or storage == "float32":
            out[k] = t.float() if t.is_floating_point() else t
        elif storage == "float16":
            out[k] = t.half()
        else:  # symmetric per-output-channel int8
            flat = t.float().reshape(t.shape[0], -1)
            scale = (flat.abs().amax(1) / 127.0).clamp_min(1e-12)
            out[k] = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(t.shape)
            out[k + SCALE_SUFFIX] = scale
    return out


def _decode_state(stored: dict) -> dict:
    state = {}
    for k, t in stored.items():
        if k.endswith(SCALE_SUFFIX):
            continue
        if t.dtype == torch.int8:
            scale = stored.get(k + SCALE_SUFFIX)
            if scale is None:
                raise KeyError(f"int8 tensor {k!r} has no {k + SCALE_SUFFIX!r}")
            t = (t.float().reshape(t.shape[0], -1) * scale[:, None]).reshape(t.shape)
        elif t.is_floating_point():
            t = t.float()
        state[k] = t
    return state


def build_config(model: nn.Module, *, label_set, input_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 grayscale: bool = True, crop: dict | None = None, temperature: float = 1.0, tta_flip: bool = False,
                 provenance: dict | None = None, metrics: dict | None = None) -> dict:
    labels = get_label_set(label_set)
    if getattr(model, "num_classes", len(labels)) != len(labels):
        raise ValueError(f"model has {model.num_classes} classes but label set {labels.key} has {len(labels)}")
    size = tuple(input_size or getattr(model, "input_size", None) or get_entry(model.arch_name).input_size)
    if len(size) == 2:
        size = (3,) + size
    return {
        "format_version": FORMAT_VERSION,
        "architecture": model.arch_name,
        "model_args": model_config_args(model),
        "label_set": labels.key,
        "label_names": list(labels.names),
        "num_classes": len(labels),
        "input_size": list(size),
        "mean": list(mean),
        "std": list(std),
        "grayscale": bool(grayscale),
        "crop": dict(crop or FER_CROP.to_config()),
        "temperature": float(temperature),
        "tta_flip": bool(tta_flip),
        "provenance": dict(provenance or {}),
        "metrics": dict(metrics or {}),
    }


def save_pretrained(model: nn.Module, out_dir, config: dict, *, storage: str = "float32",
                    branch_refs: dict[str, str] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``out_dir``; returns the folder.

    ``branch_refs`` (fusion only), e.g. ``{"branch_a": "../ddamfn"}``: leave those submodules out of the file
    and record where their weights are (a folder relative to ``out_dir`` or a registered weight name) with the
    sha256 of that folder's ``model.safetensors``; the loader loads and checks them.
    """
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {STORAGE_DTYPES}, got {storage!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    refs = {}
    for prefix, ref in (branch_refs or {}).items():
        ref_dir = _resolve_ref_dir(out_dir, ref)
        refs[prefix] = {"weights": ref, "sha256": sha256_file(ref_dir / WEIGHTS_FILE)}
        state = {k: v for k, v in state.items() if not k.startswith(prefix + ".")}
    bad = nonfinite_tensors(state)
    if bad:  # such weights may still answer (when the values sit where no input reaches) but break elsewhere
        raise WeightsError(f"not saving {config['architecture']} to {out_dir}: " + _nonfinite_message(bad))
    config = dict(config, storage=storage, branch_refs=refs)
    encoded = _encode_state(state, storage)
    bad = nonfinite_tensors(encoded)
    if bad:
        raise WeightsError(f"not saving {config['architecture']} to {out_dir} as {storage}: values beyond its range, "
                           + _nonfinite_message(bad))
    if not _same_tensors(out_dir / WEIGHTS_FILE, encoded):  # unchanged tensors keep their file (and sha256)
        with atomic_output(out_dir / WEIGHTS_FILE) as tmp:
            # one metadata key: safetensors writes a map of several in a random order, so that the same tensors
            # would get another sha256 each time (the architecture and the storage are in config.json)
            save_file(encoded, str(tmp), metadata={"format": "pt"})
    config["files"] = {WEIGHTS_FILE: {"sha256": sha256_file(out_dir / WEIGHTS_FILE),
                                      "bytes": (out_dir / WEIGHTS_FILE).stat().st_size}}
    write_config(out_dir, config)
    return out_dir


def _same_tensors(path: Path, encoded: dict) -> bool:
    """Whether the safetensors file at ``path`` holds exactly ``encoded`` (names, dtypes, values)."""
    if not path.is_file():
        return False
    try:
        stored = load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        return False
    return stored.keys() == encoded.keys() and all(
        stored[k].dtype == t.dtype and stored[k].shape == t.shape and torch.equal(stored[k], t)
        for k, t in encoded.items())


def write_config(weights_dir, config: dict) -> Path:
    """(Re)write a weights folder's config.json, e.g. to add measured metrics; the tensors stay as they are."""
    return write_text_atomic(Path(weights_dir) / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


# -- loading -----------------------------------------------------------------------------------------------------

REQUIRED_KEYS = ("architecture", "model_args", "label_names", "input_size", "mean", "std", "files")


def read_config(path) -> dict:
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file (a weights folder needs {CONFIG_FILE} and {WEIGHTS_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise WeightsError(f"{path}: missing keys {missing}")
    if config.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise WeightsError(f"{path}: format_version {config['format_version']} is newer than this fer_core reads")
    return config


def _weights_dir(path: Path) -> Path:
    if path.is_dir():
        return path
    if path.name in (WEIGHTS_FILE, CONFIG_FILE):
        return path.parent
    raise WeightsError(f"{path}: expected a weights folder or its {WEIGHTS_FILE} / {CONFIG_FILE}")


def _resolve_ref_dir(base: Path, ref: str) -> Path:
    local = (base / ref)
    if (local / CONFIG_FILE).exists():
        return local.resolve()
    if ref in PRETRAINED:  # a registered name: found the way every registered weight is (fer_core.sources)
        return locate_pinned(PRETRAINED[ref])[0]
    raise WeightsError(f"{base / CONFIG_FILE}: branch weights {ref!r} are neither a folder beside it nor a "
                       f"registered weight name ({list_pretrained()})")


def weights_sha256(model: nn.Module) -> str | None:
    """The sha256 of the ``model.safetensors`` a loaded model came from (None for a model built in memory)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return cfg.get("files", {}).get(WEIGHTS_FILE, {}).get("sha256")


def load_weights(path, expected_sha256: str | None = None, reuse=()) -> nn.Module:
    """Load a weights folder (or its safetensors / config file) strictly; returns a float32 model in eval mode
    with ``model.pretrained_cfg`` (the config) and ``model.temperature`` set.

    A fusion's branches are references to other weights folders (``branch_refs``). Each is loaded, unless a model
    in ``reuse`` was loaded from exactly that file (same sha256): then the fusion takes that module itself, so an
    app that holds the branches and the fusion holds every parameter once."""
    wdir = _weights_dir(Path(path))
    cfg_path, w_path = wdir / CONFIG_FILE, wdir / WEIGHTS_FILE
    config = read_config(cfg_path)
    if not w_path.exists():
        raise WeightsError(f"{w_path}: no such file")
    actual = sha256_file(w_path)
    recorded = config["files"].get(WEIGHTS_FILE, {}).get("sha256")
    if recorded != actual:
        raise WeightsError(f"{w_path}: sha256 {actual[:12]}... does not match the {recorded and recorded[:12]}... "
                           f"recorded in {cfg_path} (the file was changed, truncated or belongs to another config)")
    if expected_sha256 is not None and expected_sha256 != actual:
        raise WeightsError(f"{w_path}: sha256 {actual[:12]}... is not the pinned {expected_sha256[:12]}...")
    try:
        stored = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{w_path}: cannot read safetensors ({e})") from None
    try:
        state = _decode_state(stored)
    except KeyError as e:
        raise WeightsError(f"{w_path}: {e.args[0]}") from None
    bad = nonfinite_tensors(state)
    if bad:
        raise WeightsError(f"{w_path}: " + _nonfinite_message(bad))
    arch = config["architecture"]
    args = dict(config["model_args"])
    reused = set()
    for prefix, ref in (config.get("branch_refs") or {}).items():
        branch = next((m for m in reuse if weights_sha256(m) == ref["sha256"]), None)
        if branch is None:
            branch = load_weights(_resolve_ref_dir(wdir, ref["weights"]), expected_sha256=ref["sha256"])
        else:
            reused.add(prefix)
        args[prefix] = branch  # the fusion is built around the branch module (its constructor takes one)
        state.update({f"{prefix}.{k}": v for k, v in branch.state_dict().items()})
    try:
        get_entry(arch)
        model = create_model(arch, **args)
    except KeyError as e:
        raise WeightsError(f"{cfg_path}: {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{cfg_path}: model_args do not build {arch!r} ({e})") from None
    if getattr(model, "num_classes", None) != len(config["label_names"]):
        raise WeightsError(f"{cfg_path}: {len(config['label_names'])} label names for a model with "
                           f"{model.num_classes} classes")
    _load_strict(model, state, w_path, skip=reused)
    model.eval()
    model.pretrained_cfg = config
    model.temperature = float(config.get("temperature", 1.0))
    model.weights_dir = wdir  # where derived files (its ONNX export) are cached
    return model


def _load_strict(model: nn.Module, state: dict, where: Path, skip=()):
    """Every tensor of ``model`` from ``state``, nothing missing, nothing extra; the tensors of submodules in
    ``skip`` (shared, already loaded) are checked but not copied."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[:3]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[:3]})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:3]})")
    if problems:
        raise WeightsError(f"{where}: does not fit {model.arch_name} as configured: " + "; ".join(problems))
    prefixes = tuple(p + "." for p in skip)
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own if not k.startswith(prefixes)},
                          strict=not prefixes)


def load_pretrained(name_or_path, *, endpoint: str | None = None, cache_dir=None, reuse=(),
                    source: str | None = None) -> nn.Module:
    """Load weights by path (a folder or its files), else by registered name (:mod:`fer_core.pretrained`): a
    folder ``FER_WEIGHTS_DIR`` names when it holds them; else the copy shipped in ``weights/`` when it matches its
    pins, with no network call; else the Hub's pinned copy (cached the usual Hub way). ``source`` (or
    ``FER_WEIGHTS_SOURCE``): ``auto`` as said, ``local`` (never the Hub), ``hub`` (always the Hub). Whatever the
    source, weights and config must match their pins: no silent switch to other weights. ``reuse``: see
    :func:`load_weights`."""
    path = Path(name_or_path)
    if path.exists():
        return load_weights(path, reuse=reuse)
    name = str(name_or_path)
    if name not in PRETRAINED:
        raise WeightsError(f"{name!r} is neither an existing path nor a registered weight name "
                           f"(registered: {list_pretrained()})")
    path, own_folder = locate_pinned(PRETRAINED[name], endpoint, cache_dir, source)
    return load_weights(path, expected_sha256=None if own_folder else PRETRAINED[name].sha256, reuse=reuse)
