"""Explanations: Grad-CAM (the ``grad-cam`` package) and each model's own attention, as ``H x W`` maps in [0, 1].

**Cheap Grad-CAM.** Grad-CAM needs the gradient of a class score at one layer only. The page's path
(:meth:`fer_core.predict.Analyzer.read` with maps) runs each model's part before that layer's output without a
graph (``forward_prefix``, in ONNX Runtime where it can), makes those activations a leaf and runs the rest
(``forward_suffix``) with frozen parameters, then ONE backward gives the gradients of every explained score (each
model's and the fusion's) and :func:`gradcam_maps` applies the variant's formula (``CAM``).
:func:`gradcam_with_details` is the ``grad-cam`` package's class of that variant on one model (a forward hook on
the target layer hands the rest of the network a detached copy of its output that requires grad, so the backward
runs through the head only): the reference that the page's maps are tested equal to, and the baseline of
``bench/maps.py``. The same forward yields the logits and the model's own attention, so one pass serves prediction
and both maps.

**Which variant.** The page draws the package's LayerCAM (Jiang et al., IEEE TIP 2021: the positive part of the
gradient times the activation, cell by cell, summed over channels) at each model's Grad-CAM target: at 64 and 80 px
the targets are 4x4 and 5x5, and plain Grad-CAM's one weight per channel left 9.0% of DDAMFN's and 7.2% of
ResNet+DDA's maps of the label shown zero everywhere on FER+ valid; LayerCAM none of 3,417
(``bench/blank_maps.py``, docs/readings.md). ``CAM_VARIANTS`` holds the variants measured, each with the package's
class (the reference the tests hold our formula equal to).

**Own attention.** DDAMFN: the channel-mean of the max over its dual-direction heads (input / 16: 7x7 at 112,
4x4 at 64). ResNet+DDA: the mean of its DDA stage masks (channel max of each channel-softmax mask) that are at
least 4x4 (all of them if none is), each resized to the crop and normalised.
Fusion: its branch weights; its Grad-CAM (of the fused score, through each branch's target layer) and its
attention are each branch's map, normalised, mixed by that face's branch weights.

**Which class.** Grad-CAM explains the class the page shows: the top of the test-time-flip-averaged logits (or
the class chosen), for the faces only; the mirror images share the forward pass but no map is drawn for them,
and the backward starts from the faces' scores alone.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.image import scale_cam_image, show_cam_on_image
from torch import nn

from .images import gray_to_rgb
from .models.layers import MIN_MAP_SIDE


def _gradcam(act, grad):  # channel weights: the spatial mean of the gradients
    return (grad.mean((2, 3), keepdim=True) * act).sum(1)


def _hirescam(act, grad):  # the element-wise product, summed over channels
    return (grad * act).sum(1)


def _layercam(act, grad):  # the positive gradients times the activations
    return (grad.clamp(min=0) * act).sum(1)


def _gradcam_plusplus(act, grad):  # Chattopadhyay et al.'s weights (eq. 19), as the package computes them
    g2 = grad ** 2
    aij = g2 / (2 * g2 + act.sum((2, 3), keepdim=True) * g2 * grad + 1e-6)
    aij = torch.where(grad != 0, aij, torch.zeros_like(aij))
    return ((grad.clamp(min=0) * aij).sum((2, 3), keepdim=True) * act).sum(1)


def _xgradcam(act, grad):
    w = (grad * act / (act.sum((2, 3), keepdim=True) + 1e-7)).sum((2, 3), keepdim=True)
    return (w * act).sum(1)


# The grad-cam package's variants by class name: the package's class and its formula on activations and gradients
# already taken (``B x C x h x w`` each) -> ``B x h x w`` before the ReLU. ``CAM`` is the one the page draws
# (docs/readings.md: how often each is blank on FER+ valid).
CAM_VARIANTS = {"GradCAM": (GradCAM, _gradcam), "HiResCAM": (HiResCAM, _hirescam), "LayerCAM": (LayerCAM, _layercam),
                "GradCAMPlusPlus": (GradCAMPlusPlus, _gradcam_plusplus), "XGradCAM": (XGradCAM, _xgradcam)}
CAM = "LayerCAM"


class _Capture(nn.Module):
    """Wraps a model so that Grad-CAM's forward returns logits while the full details are kept."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.details = None

    def forward(self, x):
        self.details = self.model.forward_details(x)
        return self.details["logits"].float()  # the grad-cam package reads fp32 (a bf16 autocast gives bf16)


@contextlib.contextmanager
def preserved_state(model: nn.Module):
    """Restore train/eval mode and every parameter's requires_grad afterwards."""
    modes = {m: m.training for m in model.modules()}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for m, t in modes.items():
            m.training = t
        for p, f in flags:
            p.requires_grad_(f)


@contextlib.contextmanager
def graph_from(layers):
    """Within the block, each layer's output restarts the autograd graph (a leaf requiring grad); the leaves
    of the last forward are in the yielded list."""
    leaves = []

    def hook(module, args, output):
        leaf = output.detach().requires_grad_(True)
        leaves.append(leaf)
        return leaf

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield leaves
    finally:
        for h in handles:
            h.remove()


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def model_lock(model) -> threading.Lock:
    """Hooks live on the model: one explanation at a time per model."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(model), threading.Lock())


class _ShownClass:
    """Grad-CAM target of batch row ``i``: for a face (``i < n``), the class the page shows for it: ``k`` when
    one was chosen, else the top of its logits averaged over its views (rows ``i, i + n, ...``, the mirror
    image's among them), read from the forward that Grad-CAM has just run. For another view of a face (``i >= n``)
    no map is shown: its target is zero, so the backward starts from the shown rows alone."""

    def __init__(self, cap: _Capture, i: int, n: int, k: int | None, reading=None):
        self.cap, self.i, self.n, self.k, self.reading = cap, i, n, k, reading

    def __call__(self, output):
        if self.i >= self.n:
            return output[0] * 0
        k = self.k
        if k is None:
            logits = self.cap.details["logits"].detach()[self.i::self.n].float().mean(0)
            k = int((self.reading(logits[None])[0] if self.reading else logits).argmax())
        return output[k]


def gradcam_with_details(model, x: torch.Tensor, classes=None, shown: int | None = None, cheap: bool = True,
                         reading=None, variant: str = CAM):
    """Grad-CAM maps (``shown x H x W`` in [0, 1], at the input's size) of the first ``shown`` rows of ``x`` (all
    by default; the rows after them are other views of the same faces, in the same order, e.g. their mirror
    images), each for ``classes[i]`` or else the top of that face's logits averaged over its views (as
    ``reading`` turns logits into the scores shown: a temperature and the balanced setting's adjustment); plus the same
    forward's details (logits, pooled features, own attention, all rows) and the target-layer leaves (activations
    whose graph to the logits is kept, for :func:`gradcam_from_leaves`)."""
    layers = model.gradcam_layers(x.shape[-1])
    n = len(x) if shown is None else shown
    cap = _Capture(model)
    with model_lock(model), preserved_state(model):
        model.eval()
        if cheap:
            for p in model.parameters():
                p.requires_grad_(False)
        ctx = graph_from(layers) if cheap else contextlib.nullcontext([])
        with ctx as leaves, torch.enable_grad():
            with CAM_VARIANTS[variant][0](model=cap, target_layers=layers) as cam:
                targets = [_ShownClass(cap, i, n, None if classes is None else int(classes[i % n]), reading)
                           for i in range(len(x))]
                maps = cam(input_tensor=x, targets=targets)
        # Grad-CAM's gradient hooks live in the retained autograd graph and point back (through its
        # ActivationsAndGradients) at ``cap``: drop cap's reference to the outputs, or that cycle through
        # C++ graph nodes, which Python's garbage collector cannot see, would keep every request alive.
        details, cap.details = cap.details, None
    return np.clip(maps[:n], 0, 1).astype(np.float32), details, list(leaves)


def gradcam_from_leaves(scores: torch.Tensor, leaves, size, variant: str = CAM) -> np.ndarray:
    """The maps of :func:`gradcam_maps` for a score that depends on target-layer activations already computed
    (the fusion, which reuses its branches' forward passes). Rows of the leaves beyond ``len(scores)`` (other
    views) are left out."""
    return gradcams_from_leaves(scores, [leaves], size, variant)[0]


def gradcams_from_leaves(scores: torch.Tensor, groups, size, variant: str = CAM) -> list[np.ndarray]:
    """:func:`gradcam_from_leaves` for several groups of leaves (a fusion's two branches) from one backward pass
    through the graph they share."""
    n = len(scores)
    flat = [act for group in groups for act in group]
    grads = iter(torch.autograd.grad(scores.sum(), flat, retain_graph=True))
    return [gradcam_maps([(act[:n], next(grads)[:n]) for act in group], size, variant) for group in groups]


def gradcam_maps(pairs, size, variant: str = CAM) -> np.ndarray:
    """The ``grad-cam`` package's map of ``variant`` (``CAM``: the page's), as its class computes it, from
    activations already taken and the gradients of the explained scores at them: per target layer
    ``(activations, gradients)`` (``B x C x h x w`` each, one row per map), the variant's channel sum
    (:data:`CAM_VARIANTS`), its ReLU, scaled to ``size`` and normalised (the package's ``scale_cam_image``); the
    layers' maps averaged."""
    formula, per_layer = CAM_VARIANTS[variant][1], []
    for act, grad in pairs:
        cam = F.relu(formula(act.detach().float(), grad.float())).cpu().numpy()
        per_layer.append(scale_cam_image(cam, (size, size)))
    return np.clip(np.mean(per_layer, 0), 0, 1).astype(np.float32)


BLANK_BELOW = 1e-3  # a map in [0, 1] whose maximum is under this shows nothing


def is_blank(heat: np.ndarray) -> bool:
    """A map that is zero everywhere (the package's scaling makes a constant map zero): nothing to show."""
    return float(np.max(heat)) < BLANK_BELOW


def normalize_map(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return np.zeros_like(m, dtype=np.float32) if hi - lo < 1e-8 else ((m - lo) / (hi - lo)).astype(np.float32)


def resize_maps(maps: torch.Tensor, size: int) -> np.ndarray:
    """``B x h x w`` tensor -> ``B x size x size`` array, each map normalised to [0, 1]."""
    up = F.interpolate(maps.detach().float().unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False)
    return np.stack([normalize_map(m) for m in up[:, 0].cpu().numpy()])


def own_attention(attention: dict, size: int) -> np.ndarray:
    """A model's own attention as ``B x size x size`` in [0, 1] (see the module docstring)."""
    if "max" in attention:  # DDAMFN
        return resize_maps(attention["max"], size)
    masks = {k: v for k, v in sorted(attention.items()) if k.startswith("stage")}
    if not masks:
        raise ValueError(f"no known attention maps in {sorted(attention)}")
    fine = {k: v for k, v in masks.items() if min(v.shape[-2:]) >= MIN_MAP_SIDE}  # a 2x2 mask shows a quadrant
    stages = [resize_maps(v, size) for v in (fine or masks).values()]
    return np.stack([normalize_map(m) for m in np.mean(stages, 0)])


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A heat map over a crop (grayscale or RGB uint8, any size) as an RGB uint8 image at the map's size."""
    import cv2

    rgb = gray_to_rgb(crop)
    if rgb.shape[:2] != heat.shape:
        rgb = cv2.resize(rgb, heat.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return show_cam_on_image(rgb.astype(np.float32) / 255, heat, use_rgb=True, image_weight=1 - alpha)
