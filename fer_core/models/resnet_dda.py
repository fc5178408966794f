"""ResNet + Dual-Domain Attention (Tran et al., ICIP 2023), for ResNet18/34/50.

After each selected stage a DDA block computes a mask ``m`` of the stage output's shape and the stage passes on
``x * (1 + m)``. The mask fuses a *spatial* path (strided 3x3 convs down to the 1/32 grid) with a *context* path
(two 3x3 convs, then copies of ResNet18's stages from this stage on, refined by attention-refinement modules) in a
feature-fusion module, upsamples back to the stage's grid and ends in a 1x1 conv + BN + ReLU + channel softmax
(as in the authors' public code). Unlike the reference, each context path holds only the ResNet18 stages it
runs, so no parameter is left unused. At 224x224 every tensor has exactly the reference's shape; at other input
sizes the few places where the reference's fixed strides would disagree by a pixel are aligned with bilinear
resizing (upsampled maps) or adaptive max pooling (the 2x2 pooling of DDA1's context), and nothing else changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .layers import MIN_MAP_SIDE, ConvBNReLU
from .registry import register_model

R18_WIDTH = (64, 128, 256, 512)  # ResNet18 stage output widths
R18_IN = (64, 64, 128, 256)  # ResNet18 stage input widths


def stage_side(input_size: int, stage: int) -> int:
    """Side of ResNet stage ``stage``'s output (1-4) for a square input: a stride 2 conv, a stride 2 max-pool,
    then stages 2-4 each halve it (every step ``ceil(n / 2)``)."""
    n = int(input_size)
    for _ in range(stage + 1):
        n = (n + 1) // 2
    return n


def _resize_to(t, ref):
    return t if t.shape[-2:] == ref.shape[-2:] else F.interpolate(t, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def _channel_softmax_gate(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


class ARM(nn.Module):
    """Attention refinement: x * softmax_c(BN(conv1x1(GAP(x))))."""

    def __init__(self, c):
        super().__init__()
        self.gate = _channel_softmax_gate(c)

    def forward(self, x):
        return x * self.gate(x.mean((2, 3), keepdim=True)).softmax(1)


class FFM(nn.Module):
    """Feature fusion: f = ConvBNReLU3x3(cat); a = softmax_c(BN(conv(ReLU(BN(conv(GAP f)))))); f + f * a."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_out, 3, 1, 1)
        self.squeeze = nn.Sequential(nn.Conv2d(c_out, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
        self.gate = _channel_softmax_gate(c_out)

    def forward(self, x):
        f = self.conv(x)
        a = self.gate(self.squeeze(f.mean((2, 3), keepdim=True))).softmax(1)
        return f + f * a


def up(c_in, c_out, k=2, s=2, p=0) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def upsampler(scale: int, c_in: int, c_mid: int) -> nn.Sequential:
    """``scale`` x2 transposed-conv steps c_in -> c_mid ... -> c_in (scale 1: one step c_in -> c_in)."""
    if scale == 1:
        return up(c_in, c_in)
    chans = [c_in] + [c_mid] * (scale - 1) + [c_in]
    return nn.Sequential(*[up(a, b) for a, b in zip(chans[:-1], chans[1:])])


class ContextPath(nn.Module):
    """Two 3x3 ConvBNReLU, then ResNet18's stages ``stage..4``; returns (stage-3 map or None, stage-4 map)."""

    def __init__(self, c_in: int, stage: int):
        super().__init__()
        w = R18_WIDTH[stage - 1]
        self.stem = nn.Sequential(ConvBNReLU(c_in, w), ConvBNReLU(w, R18_IN[stage - 1]))
        r18 = torchvision.models.resnet18(weights=None)
        self.first = stage
        self.stages = nn.ModuleList(getattr(r18, f"layer{i}") for i in range(stage, 5))

    def forward(self, x):
        x = self.stem(x)
        c3 = None
        for i, layer in enumerate(self.stages, start=self.first):
            x = layer(x)
            if i == 3:
                c3 = x
        return c3, x


class DDABlock(nn.Module):
    """Dual-domain attention after ResNet stage ``stage`` (1-4) whose output has ``c`` channels."""

    def __init__(self, stage: int, c: int, c_mid: int = 512, width: int = 512):
        super().__init__()
        self.stage = stage
        n_spatial = 4 - stage
        chans = [c] + [width] * n_spatial
        self.spatial = nn.Sequential(*[ConvBNReLU(a, b, 3, 2, 1) for a, b in zip(chans[:-1], chans[1:])])
        self.context = ContextPath(c, stage)
        self.arm3 = ARM(256) if stage <= 3 else None
        self.arm4 = ARM(512)
        self.up4 = up(512, 512, 3, 2, 1) if stage >= 2 else None
        ctx_c = 768 if stage <= 3 else 512
        self.ffm = FFM((width if stage < 4 else c) + ctx_c, c)
        self.upsample = upsampler(4 - stage, c, c_mid) if stage < 4 else None
        self.mask_head = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))

    def mask(self, x):
        s = self.spatial(x) if self.stage < 4 else x
        c3, c4 = self.context(x)
        c4 = self.arm4(c4) * c4.mean((2, 3), keepdim=True)
        if self.up4 is not None:
            c4 = _resize_to(self._up4(c4), s)
        parts = [s]
        if self.arm3 is not None:
            c3 = self.arm3(c3)
            if self.stage == 1:
                c3 = F.adaptive_max_pool2d(c3, s.shape[-2:])  # = 2x2 max pooling at 224x224
            parts.append(_resize_to(c3, s))
        parts.append(_resize_to(c4, s))
        f = self.ffm(torch.cat(parts, 1))
        if self.upsample is not None:
            f = _resize_to(self.upsample(f), x)
        return self.mask_head(f).softmax(1)

    def _up4(self, c4):
        """``up4`` outside autocast, in its weights' dtype (float32 in training), the result in ``c4``'s. In bf16
        autocast on the CPU (PyTorch 2.14, channels_last) the weight gradient of a transposed convolution leaves the
        kernel taps that meet no input uninitialised, NaN as often as not; with a 1x1 context map (inputs of 64 px and
        less) eight of the nine taps meet none. The map is at most a few pixels wide, so float32 costs nothing
        measurable. (A frozen bfloat16 copy, :attr:`ResNetDDA.maps_in_bfloat16`, computes no weight gradient.)"""
        with torch.autocast(c4.device.type, enabled=False):
            return self.up4(c4.to(self.up4[0].weight.dtype)).to(c4.dtype)

    def forward(self, x):
        return x * (1 + self.mask(x))


class ResNetDDA(nn.Module):
    """torchvision-layout ResNet with a :class:`DDABlock` after each stage in ``dda_stages``."""

    # The part after Grad-CAM's target (:meth:`forward_suffix`) holds most of the weights (ResNet18 with DDA on
    # stages 3-4 at 80 px: 47 of 50 M parameters, at batch 3 a forward and a backward that mostly read them), so the
    # maps may run it in a bfloat16 copy: by default where torch reads alone on a CPU with native bfloat16, on request
    # beside ONNX Runtime (fer_core.predict.engines.attach_lean; BENCHMARKS "The maps").
    maps_in_bfloat16 = True

    def __init__(self, depth: int = 34, num_classes: int = 8, dda_stages=(1, 2, 3, 4), c_mid: int | None = None,
                 dda_width: int = 512, drop_rate: float = 0.0, in_chans: int = 3):
        super().__init__()
        builders = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}
        if depth not in builders:
            raise ValueError(f"depth must be one of {sorted(builders)}, got {depth}")
        if in_chans != 3:
            raise ValueError("ResNetDDA takes 3-channel input (grayscale faces are replicated to 3 channels)")
        dda_stages = tuple(sorted(set(int(s) for s in dda_stages)))
        if any(s not in (1, 2, 3, 4) for s in dda_stages):
            raise ValueError(f"dda_stages must be a subset of (1, 2, 3, 4), got {dda_stages}")
        self.depth, self.num_classes, self.dda_stages = depth, num_classes, dda_stages
        base = builders[depth](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = base.conv1, base.bn1, base.relu, base.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = base.layer1, base.layer2, base.layer3, base.layer4
        mult = 4 if depth == 50 else 1
        widths = [w * mult for w in (64, 128, 256, 512)]
        c_mid = c_mid if c_mid is not None else (612 if depth == 50 else 512)
        self.dda = nn.ModuleDict(
            {str(s): DDABlock(s, widths[s - 1], c_mid, dda_width) for s in dda_stages}
        )
        self.num_features = widths[-1]
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)

    def gradcam_layers(self, input_size: int | None = None) -> list[nn.Module]:
        """Grad-CAM's target: the last block of stage 4 (before its DDA gate), as for torchvision ResNets; for a
        small ``input_size`` the deepest stage whose map is still at least ``MIN_MAP_SIDE`` pixels wide (at 64 px
        stage 4 is 2x2, stage 3 4x4), so that the map shows where the model looks rather than one quadrant."""
        return [getattr(self, f"layer{self._target_stage(input_size)}")[-1]]

    @staticmethod
    def _target_stage(input_size: int | None) -> int:
        stage = 4
        if input_size:
            while stage > 1 and stage_side(input_size, stage) < MIN_MAP_SIDE:
                stage -= 1
        return stage

    def _stage(self, i, x, masks=None):
        """Stage ``i`` from its input through its DDA gate."""
        return self._gate(i, getattr(self, f"layer{i}")(x), masks)

    def _gate(self, i, x, masks=None):
        block = self.dda[str(i)] if str(i) in self.dda else None
        if block is None:
            return x
        m = block.mask(x)
        if masks is not None:
            masks[f"stage{i}"] = m
        return x * (1 + m)

    def _stages(self, x, masks=None):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = self._stage(i, x, masks)
        return x

    def forward_features(self, x):
        return self._stages(x)

    def forward_head(self, feat, pre_logits: bool = False):
        pooled = feat.mean((2, 3))
        return pooled if pre_logits else self.fc(self.drop(pooled))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def forward_prefix(self, x) -> dict:
        """The part before Grad-CAM's target's output (for this input's size): ``{"act": the target block's output
        (before its stage's DDA gate), "stage": its stage, "attention": the earlier stages' DDA maps}``."""
        s = self._target_stage(x.shape[-1])
        masks = {}
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, s):
            x = self._stage(i, x, masks)
        return {"act": getattr(self, f"layer{s}")(x), "stage": s, "attention": _attention(masks)}

    def forward_suffix(self, pre: dict) -> dict:
        """The rest, from :meth:`forward_prefix`'s output (``forward_details(x)`` is
        ``forward_suffix(forward_prefix(x))``)."""
        s, masks = pre["stage"], {}
        x = self._gate(s, pre["act"], masks)
        for i in range(s + 1, 5):
            x = self._stage(i, x, masks)
        pooled = self.forward_head(x, pre_logits=True)
        return {"logits": self.fc(self.drop(pooled)), "pooled": pooled,
                "attention": {**pre.get("attention", {}), **_attention(masks)}}

    def forward_details(self, x) -> dict:
        return self.forward_suffix(self.forward_prefix(x))

    def reset_classifier(self, num_classes: int):
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)


def _attention(masks: dict) -> dict:
    # A channel-softmax mask sums to 1 over channels at every pixel, so its channel mean is flat: show where some
    # channel is boosted most (channel max), as a B x H x W map in (0, 1].
    return {k: m.amax(1) for k, m in masks.items()}


def _create(depth, **kwargs):
    return ResNetDDA(depth=depth, **kwargs)


@register_model("resnet18_dda", family="resnet_dda", input_size=(3, 224, 224), paper="Tran et al., ICIP 2023")
def resnet18_dda(**kwargs):
    return _create(18, **kwargs)


@register_model("resnet34_dda", family="resnet_dda", input_size=(3, 224, 224), paper="Tran et al., ICIP 2023")
def resnet34_dda(**kwargs):
    return _create(34, **kwargs)


@register_model("resnet50_dda", family="resnet_dda", input_size=(3, 224, 224), paper="Tran et al., ICIP 2023")
def resnet50_dda(**kwargs):
    return _create(50, **kwargs)
