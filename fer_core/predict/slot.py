"""A loaded model as the analyzer holds it: the module, its data config and transform, and the engines attached to
it (:mod:`fer_core.predict.engines`)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..balance import offset
from ..preprocess import DataConfig, Transform, build_transform, resolve_data_config


@dataclass
class Slot:
    """A loaded model with its data config (:func:`fer_core.preprocess.resolve_data_config`) and the transform
    built from it. A hidden slot is a lone fusion's branch: run for the fusion, not shown."""

    key: str
    model: torch.nn.Module
    labels: list[str]
    data: DataConfig
    transform: Transform
    hidden: bool = False
    onnx: object = None  # ONNX Runtime's reading of the same weights: ``prefix``, then the rest (runtime.OnnxChain)
    prefix: object = None  # ONNX Runtime's session of the part before Grad-CAM's target (forward_prefix), for both
    lean: torch.nn.Module | None = None  # a frozen bfloat16 copy that runs the part after the target, for maps

    @classmethod
    def from_model(cls, key, model, data: DataConfig | None = None, hidden: bool = False, labels=None):
        data = data or resolve_data_config(model)
        labels = list(labels or model.pretrained_cfg["label_names"])
        return cls(key, model.eval(), labels, data, build_transform(data), hidden)

    @property
    def size(self) -> int:
        return self.data.input_size

    @property
    def grayscale(self) -> bool:
        return self.data.crop.grayscale

    @property
    def tta_flip(self) -> bool:
        return self.data.tta_flip

    @property
    def temperature(self) -> float:
        return self.data.temperature

    def reading(self, setting: str = "accurate"):
        """Logits -> the scores whose softmax the page shows: tempered, and in the balanced setting adjusted for
        the training class frequencies (:mod:`fer_core.balance`)."""
        shift = None if self.hidden else offset(self.model.pretrained_cfg, setting)
        t = self.temperature

        def scores(logits):
            z = logits.float() / t
            return z if shift is None else z - shift.to(z.device)

        return scores

    def batch(self, crops, flip: bool = False):
        """Face crops -> the model's input, by the one transform (as in evaluation)."""
        return self.transform(crops, flip)

    def seen(self, x) -> list[np.ndarray]:
        return self.transform.seen(x)


def feeds(slot: Slot, data: DataConfig) -> bool:
    """``slot`` reads exactly what ``data`` describes (its own temperature aside)."""
    return replace(slot.data, temperature=1.0) == replace(data, temperature=1.0)


def view_logits(logits: torch.Tensor, n: int) -> torch.Tensor:
    """Logits of the faces, averaged with their flipped views' when the batch holds both."""
    return logits[:n] if len(logits) == n else (logits[:n] + logits[n:2 * n]) / 2


def views(slot: Slot, crops, x) -> torch.Tensor:
    """The faces, then (with test-time flip) their mirror images: one batch, one forward for both views."""
    return torch.cat([x, slot.batch(crops, flip=True)]) if slot.tta_flip else x
