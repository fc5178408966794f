"""Batched augmentation on the device that holds the data (GPU or CPU), one fused resample per batch.

The whole dataset stays on the device as uint8. For a batch of indices, :class:`GpuAugment` gathers the images,
builds one random affine per sample (horizontal flip, rotation, scale, translation = random crop with padding),
and resamples straight from the stored 48x48 (or any) size to the model's input size with one ``grid_sample``,
then normalises and applies random erasing; mixup / cutmix are optional. All randomness comes from the
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


def eval_transform(images: torch.Tensor, size: int, mean, std, flip: bool = False) -> torch.Tensor:
    """Deterministic preprocessing: resize (bilinear, antialiased) to ``size`` and normalise."""
    x = to_float_rgb(images)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if flip:
        x = x.flip(3)
    return normalize(x, mean, std)


def _uniform(n, lo, hi, g, device):
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


class GpuAugment:
    def __init__(self, size: int, mean, std, cfg: AugmentConfig | None = None):
        self.size, self.mean, self.std, self.cfg = size, mean, std, cfg or AugmentConfig()

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, g: torch.Generator):
        """``images`` uint8 on the device; ``targets`` ``B x C`` probabilities. Returns (x, targets)."""
        c, dev = self.cfg, images.device
        b = images.shape[0]
        x = to_float_rgb(images)
        theta = self._affine(b, g, dev)
        grid = F.affine_grid(theta, (b, 3, self.size, self.size), align_corners=False)
        if x.shape[-1] > 2 * self.size:  # downscaling a lot: pre-shrink so bilinear sampling does not alias
            x = F.interpolate(x, size=(2 * self.size, 2 * self.size), mode="area")
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        x = normalize(x, self.mean, self.std)
        if c.erase_p > 0:
            x = self._erase(x, g)
        if (c.mixup > 0 or c.cutmix > 0) and float(torch.rand((), generator=g, device=dev)) < c.mix_p:
            x, targets = self._mix(x, targets, g)
        return x, targets

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

    def _erase(self, x, g):
        c, (b, _, h, w), dev = self.cfg, x.shape, x.device
        area = _uniform(b, *c.erase_scale, g, dev) * h * w
        logr = _uniform(b, math.log(c.erase_ratio[0]), math.log(c.erase_ratio[1]), g, dev)
        eh = (area * logr.exp()).sqrt().clamp(1, h)
        ew = (area / logr.exp()).sqrt().clamp(1, w)
        y0 = torch.rand(b, generator=g, device=dev) * (h - eh)
        x0 = torch.rand(b, generator=g, device=dev) * (w - ew)
        on = torch.rand(b, generator=g, device=dev) < c.erase_p
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        box = ((ys >= y0.view(-1, 1, 1)) & (ys < (y0 + eh).view(-1, 1, 1)) &
               (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + ew).view(-1, 1, 1)) & on.view(-1, 1, 1))
        return x.masked_fill(box.unsqueeze(1), 0.0)

    def _mix(self, x, targets, g):
        c, b, dev = self.cfg, x.shape[0], x.device
        perm = torch.randperm(b, generator=g, device=dev)
        use_cutmix = c.cutmix > 0 and (c.mixup <= 0 or float(torch.rand((), generator=g, device=dev)) < 0.5)
        alpha = c.cutmix if use_cutmix else c.mixup
        seed = int(torch.randint(2**31 - 1, (1,), generator=g, device=dev))
        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
        if use_cutmix:
            h, w = x.shape[-2:]
            rh, rw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
            cy = int(torch.randint(h, (1,), generator=g, device=dev))
            cx = int(torch.randint(w, (1,), generator=g, device=dev))
            y0, y1 = max(cy - rh // 2, 0), min(cy + rh // 2, h)
            x0, x1 = max(cx - rw // 2, 0), min(cx + rw // 2, w)
            x = x.clone()
            x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            x = lam * x + (1 - lam) * x[perm]
        return x, lam * targets + (1 - lam) * targets[perm]
