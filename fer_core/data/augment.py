"""Batched augmentation on the device that holds the data (GPU or CPU), one fused resample per batch.

The whole dataset stays on the device as uint8. For a batch of indices, :class:`GpuAugment` gathers the images,
builds one random affine per sample (horizontal flip, rotation, scale, translation = random crop with padding),
and resamples straight from the stored 48x48 (or any) size to the model's input size with one ``grid_sample``,
then normalises and applies random erasing; mixup / cutmix are optional. A model with several inputs (a fusion,
one per branch) gets each at its own size from the same draw: the same affine, erased box and mix, resampled
from the same uint8 images. All randomness comes from the
``torch.Generator`` passed in, so a step's augmentation is a function of its seed (what makes resumed runs
bit-identical on CPU).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..options import option
from ..preprocess import normalize, to_float_rgb


@dataclass
class AugmentConfig:
    flip: float = option(0.5, "probability of a horizontal flip")
    rotate: float = option(10.0, "maximum rotation in degrees")
    scale: tuple[float, float] = option((0.9, 1.1), "range of the random scale")
    translate: float = option(0.1, "maximum shift as a fraction of the side (random crop with padding)")
    affine_p: float = option(1.0, "probability that a sample gets the rotation / scale / shift")
    erase_p: float = option(0.25, "random-erasing probability")
    erase_scale: tuple[float, float] = option((0.02, 0.25), "random erasing: range of the erased area fraction")
    erase_ratio: tuple[float, float] = option((0.3, 3.3), "random erasing: range of the box's aspect ratio")
    mixup: float = option(0.0, "mixup alpha (0: off)")
    cutmix: float = option(0.0, "cutmix alpha (0: off)")
    mix_p: float = option(0.5, "probability that a batch is mixed, when mixup or cutmix is on")


def _uniform(n, lo, hi, g, device):
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


class GpuAugment:
    def __init__(self, sizes, mean, std, cfg: AugmentConfig | None = None):
        """``sizes``: the model's input side, or a tuple of sides (one input per size, from the same draw)."""
        self.sizes = tuple(sizes) if isinstance(sizes, (tuple, list)) else (int(sizes),)
        self.mean, self.std, self.cfg = mean, std, cfg or AugmentConfig()

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, g: torch.Generator):
        """``images`` uint8 on the device; ``targets`` ``B x C`` probabilities. Returns (x, targets), ``x`` a
        tuple when there are several sizes."""
        c, dev = self.cfg, images.device
        b = images.shape[0]
        src = to_float_rgb(images)
        theta = self._affine(b, g, dev)
        erase = self._erase_boxes(b, g, dev) if c.erase_p > 0 else None
        mix = None
        if (c.mixup > 0 or c.cutmix > 0) and float(torch.rand((), generator=g, device=dev)) < c.mix_p:
            mix = self._mix_draw(b, g, dev)
        outs = []
        for size in self.sizes:
            x = src
            if x.shape[-1] > 2 * size:  # downscaling a lot: pre-shrink so bilinear sampling does not alias
                x = F.interpolate(x, size=(2 * size, 2 * size), mode="area")
            grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
            x = normalize(x, self.mean, self.std)
            if erase is not None:
                x = x.masked_fill(_box_mask(erase, size).unsqueeze(1), 0.0)
            if mix is not None:
                x = self._mix_apply(x, mix)
            outs.append(x)
        if mix is not None:
            perm, lam = mix["perm"], mix["lam"]
            targets = lam * targets + (1 - lam) * targets[perm]
        return (outs[0] if len(outs) == 1 else tuple(outs)), targets

    def _affine(self, b, g, dev):
        c = self.cfg
        flip = torch.where(torch.rand(b, generator=g, device=dev) < c.flip, -1.0, 1.0)
        on = (torch.rand(b, generator=g, device=dev) < c.affine_p).float()
        ang = _uniform(b, -c.rotate, c.rotate, g, dev) * math.pi / 180 * on
        sc = 1 + (_uniform(b, c.scale[0], c.scale[1], g, dev) - 1) * on
        tx = _uniform(b, -c.translate, c.translate, g, dev) * 2 * on
        ty = _uniform(b, -c.translate, c.translate, g, dev) * 2 * on
        cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
        theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
        return theta

    def _erase_boxes(self, b, g, dev) -> torch.Tensor:
        """Random-erasing boxes as fractions of the side, ``B x 5`` (y0, y1, x0, x1, on)."""
        c = self.cfg
        area = _uniform(b, *c.erase_scale, g, dev)
        logr = _uniform(b, math.log(c.erase_ratio[0]), math.log(c.erase_ratio[1]), g, dev)
        eh = (area * logr.exp()).sqrt().clamp(0, 1)
        ew = (area / logr.exp()).sqrt().clamp(0, 1)
        y0 = torch.rand(b, generator=g, device=dev) * (1 - eh)
        x0 = torch.rand(b, generator=g, device=dev) * (1 - ew)
        on = (torch.rand(b, generator=g, device=dev) < c.erase_p).float()
        return torch.stack([y0, y0 + eh, x0, x0 + ew, on], 1)

    def _mix_draw(self, b, g, dev) -> dict:
        c = self.cfg
        perm = torch.randperm(b, generator=g, device=dev)
        use_cutmix = c.cutmix > 0 and (c.mixup <= 0 or float(torch.rand((), generator=g, device=dev)) < 0.5)
        alpha = c.cutmix if use_cutmix else c.mixup
        seed = int(torch.randint(2**31 - 1, (1,), generator=g, device=dev))
        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
        draw = {"perm": perm, "lam": lam, "cutmix": use_cutmix}
        if use_cutmix:  # the box as fractions of the side; lam becomes the kept area
            r = math.sqrt(1 - lam)
            cy, cx = float(torch.rand((), generator=g, device=dev)), float(torch.rand((), generator=g, device=dev))
            y0, y1 = max(cy - r / 2, 0.0), min(cy + r / 2, 1.0)
            x0, x1 = max(cx - r / 2, 0.0), min(cx + r / 2, 1.0)
            draw["box"] = (y0, y1, x0, x1)
            draw["lam"] = 1 - (y1 - y0) * (x1 - x0)
        return draw

    @staticmethod
    def _mix_apply(x, mix: dict):
        if not mix["cutmix"]:
            return mix["lam"] * x + (1 - mix["lam"]) * x[mix["perm"]]
        size = x.shape[-1]
        y0, y1, x0, x1 = (int(round(v * size)) for v in mix["box"])
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[mix["perm"], :, y0:y1, x0:x1]
        return x


def _box_mask(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """``B x size x size`` mask of the boxes (fractions of the side; pixels whose centre lies inside)."""
    centres = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    ys, xs = centres.view(1, size, 1), centres.view(1, 1, size)
    y0, y1, x0, x1, on = (boxes[:, i].view(-1, 1, 1) for i in range(5))
    return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1) & (on > 0)
