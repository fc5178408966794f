"""``fer_core.create_model``: the registry's builder, or with ``pretrained=True`` the shipped weights.

It sits above both the registry (:mod:`fer_core.models.registry`, which builds untrained models) and the
weights layer (:mod:`fer_core.weights`, which builds through the registry and then loads), so that neither
imports the other.
"""
from __future__ import annotations

import json

from torch import nn

from .models import registry
from .models.registry import model_config_args
from .pretrained import PRETRAINED
from .weights import load_pretrained


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered model (``fer_core.list_models()``). With ``pretrained=True``: load trained weights
    (Hub, else ``weights/``), by weight name (``ddamfn``, ``resnet_dda``, ``fusion``) or by the architecture
    they are (``resnet18_dda``); keyword arguments must then agree with the weights' configuration."""
    if not pretrained:
        return registry.create_model(name, **kwargs)
    entry = PRETRAINED.get(name) or next((e for e in PRETRAINED.values() if e.architecture == name), None)
    if entry is None:
        archs = sorted({e.architecture for e in PRETRAINED.values()} | set(PRETRAINED))
        raise KeyError(f"no pretrained weights for {name!r}; there are weights for {archs}")
    model = load_pretrained(entry.name)
    have = json.loads(json.dumps({"num_classes": getattr(model, "num_classes", None), **model_config_args(model)}))
    asked = json.loads(json.dumps(kwargs))  # tuples and lists compare alike
    differ = {k: (v, have.get(k)) for k, v in asked.items() if have.get(k) != v}
    if differ:
        raise ValueError(f"pretrained {entry.name!r} was built with other arguments: "
                         + ", ".join(f"{k}={v!r} asked, {h!r} in the weights" for k, (v, h) in differ.items()))
    return model
