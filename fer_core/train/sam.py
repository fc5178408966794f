"""Sharpness-aware minimisation (Foret et al. 2021) around any torch optimiser."""
from __future__ import annotations

import torch


class SAM:
    """``first_step()`` moves the weights to the worst case within an L2 ball of radius ``rho`` (using the
    current gradients); after a second forward/backward there, ``second_step()`` restores the weights and lets
    the base optimiser step with the sharpness-aware gradients."""

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05):
        if rho <= 0:
            raise ValueError("rho must be > 0")
        self.base, self.rho = base, rho
        self._e = {}

    def _params(self):
        return [p for g in self.base.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self):
        params = self._params()
        norm = torch.norm(torch.stack([p.grad.norm(2) for p in params]), 2)
        scale = self.rho / (norm + 1e-12)
        for p in params:
            e = p.grad * scale
            p.add_(e)
            self._e[p] = e

    @torch.no_grad()
    def second_step(self):
        for p, e in self._e.items():
            p.sub_(e)
        self._e.clear()
        self.base.step()
