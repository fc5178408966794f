"""One data config per weight, and one transform built from it.

Every consumer (the trainer's evaluation, ``evaluate.py``, the fusion, the Analyzer behind the page, the
benches) preprocesses through these two functions, so that what a visitor sees is what was measured:

    dc = resolve_data_config(model)      # from config.json: crop spec, input size(s), mean/std, flip, temperature
    tf = build_transform(dc)             # uint8 crops (N x S x S [x 3]) -> the model's input
    x = tf(crops)                        # a tensor; for a fusion a tuple, one input per branch

A fusion's branches are each fed their own input, resized from the same uint8 crop (never one branch's input
resized again for the other), in training, in evaluation and on the page alike. The crop itself, from a photo, is
:func:`fer_core.faces.crop_face` with ``dc.crop``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALIGNMENTS = ("eyes", "none")


@dataclass(frozen=True)
class CropSpec:
    """How a face box becomes the crop a model reads: a square of side ``box_scale x max(box w, h)`` centred on
    the box centre moved down by ``y_offset x box height``, rotated so the eyes are level (``align="eyes"``, when
    landmarks exist), sampled at ``size`` pixels (the training images' side: 48 for FER+), grayscale or RGB."""

    box_scale: float = 1.15
    y_offset: float = 0.0
    align: str = "eyes"
    size: int = 48
    grayscale: bool = True

    def __post_init__(self):
        if self.align not in ALIGNMENTS:
            raise ValueError(f"crop align must be one of {ALIGNMENTS}, got {self.align!r}")
        if not (self.box_scale > 0 and self.size > 0):
            raise ValueError(f"crop box_scale and size must be positive, got {self.box_scale}, {self.size}")

    @classmethod
    def from_config(cls, config: dict) -> CropSpec:
        """From a weight's config.json (``crop`` and ``grayscale``); a missing source size is the input size."""
        crop = dict(config.get("crop") or {})
        return cls(box_scale=float(crop.get("box_scale", cls.box_scale)),
                   y_offset=float(crop.get("y_offset", 0.0)), align=str(crop.get("align", "none") or "none"),
                   size=int(crop.get("source_size", config["input_size"][-1])),
                   grayscale=bool(config.get("grayscale", True)))

    def to_config(self) -> dict:
        """The ``crop`` entry of config.json (grayscale is a top-level key there)."""
        return {"box_scale": self.box_scale, "y_offset": self.y_offset, "align": self.align, "square": True,
                "source_size": self.size}


# The crop of FER+ / FER2013-style training images (48x48 grayscale, about the face box): fitted through YuNet on
# FER+'s selection slice of train (train_scripts/fit_crop.py; docs/experiments.md, "Through the detector"): a square
# of the box's longer side (YuNet's box is taller than wide), eyes levelled, not moved.
FER_CROP = CropSpec(box_scale=1.0, y_offset=0.0, align="eyes")


@dataclass(frozen=True)
class DataConfig:
    """Everything between a uint8 crop and a model's logits."""

    input_sizes: tuple[int, ...]  # one per model input: a fusion has one per branch
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop: CropSpec = field(default_factory=CropSpec)
    tta_flip: bool = False
    temperature: float = 1.0

    @property
    def input_size(self) -> int:
        """The largest input side (a plain model's only one)."""
        return max(self.input_sizes)

    def branch(self, i: int) -> DataConfig:
        """A fusion's branch ``i`` as a model of its own (same crop, mean/std and flip; no temperature)."""
        return replace(self, input_sizes=(self.input_sizes[i],), temperature=1.0)

    def to_json(self) -> dict:
        return asdict(self)


def resolve_data_config(source) -> DataConfig:
    """The data config of a loaded model (its ``pretrained_cfg``) or of a config.json dict."""
    config = getattr(source, "pretrained_cfg", source)
    if not isinstance(config, dict) or "input_size" not in config:
        raise ValueError("resolve_data_config needs a loaded model (with pretrained_cfg) or a config.json dict")
    branch_sizes = (config.get("model_args") or {}).get("branch_input_sizes")
    sizes = tuple(int(s[-1]) for s in branch_sizes) if branch_sizes else (int(config["input_size"][-1]),)
    return DataConfig(input_sizes=sizes, mean=tuple(float(v) for v in config["mean"]),
                      std=tuple(float(v) for v in config["std"]), crop=CropSpec.from_config(config),
                      tta_flip=bool(config.get("tta_flip", False)), temperature=float(config.get("temperature", 1.0)))


# -- tensors -----------------------------------------------------------------------------------------------------

def to_float_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``B x H x W`` or ``B x H x W x 3`` -> float ``B x 3 x H x W`` in [0, 1]."""
    x = images.float().div_(255)
    if x.dim() == 3:
        return x.unsqueeze(1).expand(-1, 3, -1, -1)
    return x.permute(0, 3, 1, 2)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.as_tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.as_tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased: how every crop reaches a model's input size (training draws its augmented inputs
    with one affine resample instead, :mod:`fer_core.data.augment`)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def map_inputs(fn, x):
    """``fn`` applied to a model input: a tensor, or each tensor of a fusion's tuple."""
    return tuple(fn(t) for t in x) if isinstance(x, tuple) else fn(x)


def cat_inputs(parts: list):
    """Concatenate model inputs along the batch (tensors, or fusion tuples element-wise)."""
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


class Transform:
    """uint8 crops -> a model's input, deterministic (evaluation, the page). ``flip`` mirrors them."""

    def __init__(self, dc: DataConfig):
        self.dc = dc

    def __call__(self, images, flip: bool = False):
        if isinstance(images, np.ndarray) or isinstance(images, list):
            images = torch.from_numpy(np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images))
        x = to_float_rgb(images)
        outs = tuple(normalize(resize(x, s), self.dc.mean, self.dc.std) for s in self.dc.input_sizes)
        if flip:
            outs = tuple(o.flip(3) for o in outs)
        return outs[0] if len(outs) == 1 else outs

    def seen(self, x) -> list[np.ndarray]:
        """A model input back as uint8 images (its largest input, for a fusion): what the model saw."""
        if isinstance(x, tuple):
            x = max(x, key=lambda t: t.shape[-1])
        m = torch.as_tensor(self.dc.mean).view(1, -1, 1, 1)
        s = torch.as_tensor(self.dc.std).view(1, -1, 1, 1)
        img = (x.detach().float().cpu() * s + m).clamp(0, 1).mul(255).round().to(torch.uint8)
        img = img[:, 0] if self.dc.crop.grayscale else img.permute(0, 2, 3, 1)
        return list(img.numpy())


def build_transform(dc: DataConfig) -> Transform:
    return Transform(dc)
