"""DDAMFN: Dual-Direction Attention Mixed Feature Network (Zhang et al., Electronics 12(17):3595, 2023).

Computes what the authors' public reference code computes, with two differences that
change no output: tensors the reference declares but never uses are not created (the BN/PReLU inside each mixed
depthwise conv, each head's unused 7x7 ``Linear``, the top-level ``BatchNorm1d`` over classes), and ``forward``
returns logits only (the heads' maps come from :meth:`DDAMFN.forward_details`). Module names follow the
reference so that official checkpoints map key for key (``features.<i>...``, ``cat_head<i>.CoordAtt...``,
``Linear``, ``fc``).
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvBN, ConvBNPReLU
from .registry import register_model


class CoordAtt(nn.Module):
    """Coordinate attention (Hou et al. 2021) as used inside MixedFeatureNet's mix blocks: average-pool along
    each direction, a shared 1x1 conv + BN + h-swish, then one 1x1 conv + sigmoid per direction."""

    def __init__(self, channels: int, reduction: int = 32):
        super().__init__()
        mid = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act = nn.Hardswish()
        self.conv2 = nn.Conv2d(mid, channels, 1)
        self.conv3 = nn.Conv2d(mid, channels, 1)

    def directional_maps(self, x_h, x_w):
        """From the C x H x 1 and C x W x 1 summaries, the two sigmoid maps (C x H x 1, C x 1 x W)."""
        h = x_h.shape[2]
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, y.shape[2] - h], dim=2)
        return self.conv2(y_h).sigmoid(), self.conv3(y_w.transpose(2, 3)).sigmoid()

    def forward(self, x):
        a_h, a_w = self.directional_maps(x.mean(dim=3, keepdim=True), x.mean(dim=2, keepdim=True).transpose(2, 3))
        return x * a_w * a_h


class MixedDepthwiseConv(nn.Module):
    """MixConv: split channels into groups, one depthwise conv with its own kernel per group, concatenate.

    Out of training it runs as one depthwise conv whose kernel is the groups' kernels zero-padded to the largest
    (the same sums, so the same outputs): one operator instead of a split, a conv per group and a concatenation.
    On small maps the operators' overhead costs more than the extra multiplications by zero (docs/experiments.md:
    "Fewer, larger kernels"). Training keeps the groups, whose larger batches are arithmetic-bound."""

    def __init__(self, channels: int, kernels, splits, stride: int):
        super().__init__()
        if sum(splits) != channels or len(kernels) != len(splits):
            raise ValueError(f"splits {splits} must sum to {channels} and match kernels {kernels}")
        self.splits = list(splits)
        self.mixed_depthwise_conv = nn.ModuleList(
            nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False) for k, c in zip(kernels, splits)
        )
        self._merged = (None, None)  # (the weights' versions it was built from, the merged kernel)

    def merged_weight(self) -> torch.Tensor:
        """The groups' kernels, zero-padded to the largest and stacked: cached (and rebuilt whenever a weight
        changes) unless gradients must reach them (a fusion training its branches in eval mode)."""
        convs = list(self.mixed_depthwise_conv)
        size = max(c.kernel_size[0] for c in convs)

        def merge():
            return torch.cat([F.pad(c.weight, [(size - c.kernel_size[0]) // 2] * 4) for c in convs])

        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and not torch.jit.is_tracing()
                                             and any(c.weight.requires_grad for c in convs)):
            return merge()  # traced into a compiled graph (which folds it), or gradients to the groups' kernels
        # (an ONNX export traces: there the kernel is a constant of known shape)
        key = tuple((c.weight.data_ptr(), c.weight._version) for c in convs)
        if self._merged[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # a normal tensor, which autograd may save later
                self._merged = (key, merge())
        return self._merged[1]

    def forward(self, x):
        if not self.training and len(self.splits) > 1:
            w = self.merged_weight()
            conv = self.mixed_depthwise_conv[0]
            return F.conv2d(x, w, None, conv.stride, w.shape[-1] // 2, 1, w.shape[0])
        parts = torch.split(x, self.splits, dim=1)
        return torch.cat([conv(p) for conv, p in zip(self.mixed_depthwise_conv, parts)], dim=1)


class MixBlock(nn.Module):
    """1x1 expand (ConvBNPReLU) -> mixed depthwise conv -> coordinate attention -> 1x1 project (ConvBN) [+ x]."""

    def __init__(self, c_in, c_out, groups, kernels, splits, stride=1, residual=False):
        super().__init__()
        self.conv = ConvBNPReLU(c_in, groups, 1)
        self.conv_dw = MixedDepthwiseConv(groups, kernels, splits, stride)
        self.CA = CoordAtt(groups)
        self.project = ConvBN(groups, c_out, 1)
        self.residual = residual

    def forward(self, x):
        y = self.project(self.CA(self.conv_dw(self.conv(x))))
        return x + y if self.residual else y


class MixStage(nn.Module):
    def __init__(self, c, num_blocks, groups, kernels, splits):
        super().__init__()
        self.model = nn.Sequential(*[MixBlock(c, c, groups, kernels, splits, 1, True) for _ in range(num_blocks)])

    def forward(self, x):
        return self.model(x)


def mixed_feature_net() -> nn.Sequential:
    """MixedFeatureNet up to its 512 x S x S map (7x7 at 112; the face-recognition embedding head is dropped,
    as in DDAMFN)."""
    return nn.Sequential(
        ConvBNPReLU(3, 64, 3, 2, 1),  # 112 -> 56
        ConvBNPReLU(64, 64, 3, 1, 1, groups=64),
        MixBlock(64, 64, 128, (3, 5, 7), (64, 32, 32), stride=2),  # -> 28
        MixStage(64, 9, 128, (3, 5), (96, 32)),
        MixBlock(64, 128, 256, (3, 5, 7), (128, 64, 64), stride=2),  # -> 14
        MixStage(128, 16, 256, (3, 5), (192, 64)),
        MixBlock(128, 256, 1024, (3, 5, 7, 9), (256, 256, 256, 256), stride=2),  # -> 7
        MixStage(256, 6, 512, (3, 5, 7), (172, 170, 170)),
        ConvBNPReLU(256, 512, 1),
    )


class DualDirectionAttention(CoordAtt):
    """One DDA head: learned 1xS / Sx1 depthwise "linear" pooling (ConvBN, S the map's side) in place of coordinate
    attention's averages; returns the map ``a_w * a_h`` (C x H x W in (0, 1)) instead of applying it."""

    def __init__(self, channels=512, size=7, reduction=32):
        super().__init__(channels, reduction)
        self.Linear_h = ConvBN(channels, channels, (1, size), groups=channels)  # -> C x H x 1
        self.Linear_w = ConvBN(channels, channels, (size, 1), groups=channels)  # -> C x 1 x W

    def forward(self, x):
        a_h, a_w = self.directional_maps(self.Linear_h(x), self.Linear_w(x).transpose(2, 3))
        return a_w * a_h


class AttentionHead(nn.Module):
    """Wrapper that keeps the reference's key names (``cat_head<i>.CoordAtt.*``)."""

    def __init__(self, channels=512, size=7):
        super().__init__()
        self.CoordAtt = DualDirectionAttention(channels, size)

    def forward(self, x):
        return self.CoordAtt(x)


def final_map_size(input_size: int) -> int:
    """Side of MixedFeatureNet's last map for a square input: four stride-2 convs, each ``ceil(n / 2)``
    (112 -> 7, 64 -> 4, 48 -> 3, 80 -> 5)."""
    n = int(input_size)
    for _ in range(4):
        n = (n + 1) // 2
    return n


class DDAMFN(nn.Module):
    """MixedFeatureNet -> N dual-direction attention heads -> max -> gate -> depthwise pooling -> linear.

    The heads' 1 x S / S x 1 "linear" pooling and the final S x S depthwise pooling span the whole final map, so
    their kernel size S follows the input size (``input_size / 16``: 7 at the reference's 112, 4 at 64).
    ``forward(x)`` returns logits. ``forward_details(x)`` also returns the pooled features, the heads' maps (for
    :func:`attention_loss`) and display maps (channel-mean of each head and of their max, ``B x S x S`` in (0, 1)).
    """

    def __init__(self, num_classes: int = 8, num_heads: int = 2, drop_rate: float = 0.0, in_chans: int = 3,
                 input_size: int = 112, zero_init_residual: bool = False):
        super().__init__()
        if in_chans != 3:
            raise ValueError("DDAMFN takes 3-channel input (grayscale faces are replicated to 3 channels)")
        size = final_map_size(input_size)
        if size < 2:
            raise ValueError(f"DDAMFN needs an input of at least 32 px (a 2x2 final map), got {input_size}")
        self.num_classes, self.num_heads = num_classes, num_heads
        self.input_size, self.map_size = (3, int(input_size), int(input_size)), size
        self.num_features = 512
        self.features = mixed_feature_net()
        for i in range(num_heads):
            setattr(self, f"cat_head{i}", AttentionHead(512, size))
        self.Linear = ConvBN(512, 512, size, groups=512)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(512, num_classes)
        if zero_init_residual:  # each residual block starts as the identity (Goyal et al. 2017): from scratch,
            for m in self.features.modules():  # 31 residual blocks otherwise add up to a large, noisy signal
                if isinstance(m, MixBlock) and m.residual:
                    nn.init.zeros_(m.project.bn.weight)

    def heads(self):
        return [getattr(self, f"cat_head{i}") for i in range(self.num_heads)]

    def gradcam_layers(self, input_size: int | None = None) -> list[nn.Module]:
        """Grad-CAM's target: the backbone's last 1x1 conv block (the 512 x S x S map the heads gate)."""
        return [self.features[8]]

    def forward_features(self, x):
        return self.features(x)

    def _gate_and_pool(self, feat):
        head_maps = [head(feat) for head in self.heads()]
        y = head_maps[0]
        for m in head_maps[1:]:
            y = torch.max(y, m)
        pooled = self.Linear(feat * y).flatten(1)
        return pooled, head_maps, y

    def forward_head(self, feat, pre_logits: bool = False):
        pooled, _, _ = self._gate_and_pool(feat)
        return pooled if pre_logits else self.fc(self.drop(pooled))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def forward_prefix(self, x) -> dict:
        """The part before Grad-CAM's target's output (the whole backbone): ``{"act": its 512 x S x S map}``."""
        return {"act": self.forward_features(x)}

    def forward_suffix(self, pre: dict) -> dict:
        """The rest, from :meth:`forward_prefix`'s output (``forward_details(x)`` is
        ``forward_suffix(forward_prefix(x))``)."""
        pooled, head_maps, combined = self._gate_and_pool(pre["act"])
        return {
            "logits": self.fc(self.drop(pooled)),
            "pooled": pooled,
            "head_maps": head_maps,
            "attention": {
                "max": combined.mean(1),
                **{f"head{i}": m.mean(1) for i, m in enumerate(head_maps)},
            },
        }

    def forward_details(self, x) -> dict:
        return self.forward_suffix(self.forward_prefix(x))

    def reset_classifier(self, num_classes: int):
        self.num_classes = num_classes
        self.fc = nn.Linear(512, num_classes)


def attention_loss(head_maps, eps: float = sys.float_info.epsilon) -> torch.Tensor:
    """DDAMFN's head-diversity loss: ``cnt / (sum of pairwise MSE + eps)`` over the heads' maps; 0 for one head."""
    n = len(head_maps)
    if n < 2:
        return head_maps[0].new_zeros(())
    total, cnt = 0.0, 0
    for i in range(n - 1):
        for j in range(i + 1, n):
            total = total + F.mse_loss(head_maps[i], head_maps[j])
            cnt += 1
    return cnt / (total + eps)


@register_model("ddamfn", family="ddamfn", input_size=(3, 112, 112), paper="Zhang et al., Electronics 2023",
                sized_by_input=True)
def ddamfn(**kwargs) -> DDAMFN:
    return DDAMFN(**dict(dict(num_heads=2), **kwargs))
