"""One registry and factory for every model, in the style of timm: ``create_model(name, **kwargs)``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..preprocess import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported for the models)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[..., nn.Module]
    family: str
    input_size: tuple[int, int, int]
    paper: str = ""
    defaults: dict = field(default_factory=dict)
    sized_by_input: bool = False  # the builder takes ``input_size`` (layers whose shape follows the input)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, family: str, input_size, paper: str = "", sized_by_input: bool = False):
    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, family, tuple(input_size), paper, sized_by_input=sized_by_input)
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered models: {list_models()}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model with fresh weights (``fer_core.create_model(..., pretrained=True)`` loads
    trained ones)."""
    entry = get_entry(name)
    model = entry.fn(**kwargs)
    # What config.json records to rebuild the model: the registered name and the arguments it was given.
    model.arch_name = name
    model.model_args = dict(kwargs)
    return model


def model_config_args(model: nn.Module) -> dict:
    """The JSON-serialisable arguments that rebuild ``model`` with :func:`create_model`."""
    if hasattr(model, "config_args"):
        return model.config_args()
    return dict(model.model_args)
