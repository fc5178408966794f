"""Small building blocks shared by the model families (names follow the reference code's attribute names)."""
from __future__ import annotations

from torch import nn

# Attention and Grad-CAM maps coarser than this say little about where a model looks (a 2x2 map shows a quadrant):
# the Grad-CAM layer and the attention shown are chosen at least this wide.
MIN_MAP_SIDE = 4


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm: the reference's ``Linear_block``."""

    def __init__(self, c_in, c_out, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class ConvBNPReLU(ConvBN):
    """Conv (no bias) + BatchNorm + per-channel PReLU: the reference's ``Conv_block``."""

    def __init__(self, c_in, c_out, kernel=1, stride=1, padding=0, groups=1):
        super().__init__(c_in, c_out, kernel, stride, padding, groups)
        self.prelu = nn.PReLU(c_out)

    def forward(self, x):
        return self.prelu(self.bn(self.conv(x)))


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU."""

    def __init__(self, c_in, c_out, kernel=3, stride=1, padding=1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
        )


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
