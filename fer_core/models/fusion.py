"""Fusion of a DDAMFN branch and a ResNet+DDA branch.

**Fusion attention** (mode ``"attention"``, ours; the DDA authors' fusion paper is not public). Each branch ``i``
gives pooled features ``f_i`` and logits ``z_i`` (from its own classifier). Per sample:

* project each branch into a shared space: ``h_i = LayerNorm(W_i f_i)`` (``fusion_dim`` wide);
* score it with one additive-attention scorer shared by both branches, which also sees how sure the branch is
  (its softmax ``p_i``): ``s_i = v . tanh(U [h_i, p_i] + c) + b_i`` (``b_i`` a learned per-branch prior);
* weights ``w = softmax(s_a, s_b)``, the **branch weights** the UI shows (``branch_weights``, ``B x 2``);
* logits ``= w_a z_a + w_b z_b + head(sum_i w_i h_i)``, where ``head`` is a linear layer initialised to zero.

At initialisation the model is a per-sample weighted late fusion, so training the fusion part starts from the
branches' own accuracy and learns (a) which branch to trust for which face and (b) a correction from the fused
features. The branches can be frozen (default when built from trained branches: only the fusion part trains,
frozen branches stay in eval mode) or fine-tuned jointly.

Baselines: ``"late"`` (average of the two branches' probabilities; branch weights 0.5 / 0.5), ``"early"``
(concatenated pooled features -> dropout -> linear), ``"joint"`` (the early head trained end to end with both
branches: branches are trainable by default). For early and joint, the reported branch weights are each branch's
share of the logit vector's norm (``|W_a f_a| / (|W_a f_a| + |W_b f_b|)``), which says how much each branch
moved the decision.

``forward(x)`` takes the branches' own inputs as a tuple, each resized from the same crop
(:func:`fer_core.preprocess.build_transform` makes them, in training, evaluation and on the page), or one image
batch that it resizes to each branch's size. Callers that already ran the branches (the predict pipeline) call
:meth:`FusionNet.fuse` on their outputs instead.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..preprocess import resize
from .registry import create_model, get_entry, register_model

MODES = ("attention", "late", "early", "joint")


class FusionNet(nn.Module):
    def __init__(self, branch_a: str | nn.Module = "ddamfn", branch_b: str | nn.Module = "resnet18_dda",
                 mode: str = "attention", num_classes: int = 8, branch_a_args: dict | None = None,
                 branch_b_args: dict | None = None, branch_input_sizes=None, fusion_dim: int = 256,
                 drop_rate: float = 0.0, train_branches: bool | None = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"fusion mode must be one of {MODES}, got {mode!r}")
        self.mode, self.num_classes, self.fusion_dim = mode, num_classes, fusion_dim
        self.arch_name = "fusion"  # also when built directly (from_branches), not through create_model
        branches = []
        for b, args in ((branch_a, branch_a_args), (branch_b, branch_b_args)):
            if isinstance(b, str):
                b = create_model(b, **dict(dict(num_classes=num_classes), **(args or {})))
            if getattr(b, "num_classes", num_classes) != num_classes:
                raise ValueError(f"branch {b.arch_name} has {b.num_classes} classes, the fusion {num_classes}")
            branches.append(b)
        self.branch_a, self.branch_b = branches
        if branch_input_sizes is None:
            branch_input_sizes = [getattr(b, "input_size", None) or get_entry(b.arch_name).input_size for b in branches]
            branch_input_sizes = [s[-2:] for s in branch_input_sizes]
        self.branch_input_sizes = [tuple(int(v) for v in s) for s in branch_input_sizes]
        self.input_size = (3,) + max(self.branch_input_sizes)
        d_a, d_b = self.branch_a.num_features, self.branch_b.num_features
        self.drop = nn.Dropout(drop_rate)
        if mode == "attention":
            self.proj_a = nn.Sequential(nn.Linear(d_a, fusion_dim), nn.LayerNorm(fusion_dim))
            self.proj_b = nn.Sequential(nn.Linear(d_b, fusion_dim), nn.LayerNorm(fusion_dim))
            self.scorer = nn.Sequential(nn.Linear(fusion_dim + num_classes, fusion_dim // 2), nn.Tanh(),
                                        nn.Linear(fusion_dim // 2, 1))
            self.branch_prior = nn.Parameter(torch.zeros(2))
            self.head = nn.Linear(fusion_dim, num_classes)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.num_features = fusion_dim
        elif mode in ("early", "joint"):
            self.head = nn.Linear(d_a + d_b, num_classes)
            self.num_features = d_a + d_b
        else:
            self.num_features = d_a + d_b
        self.train_branches = (mode == "joint") if train_branches is None else bool(train_branches)
        self.set_branches_trainable(self.train_branches)

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_branches(cls, branch_a: nn.Module, branch_b: nn.Module, mode="attention", **kwargs):
        """Fuse two (trained) branch models; by default only the fusion part trains (except in joint mode)."""
        return cls(branch_a, branch_b, mode=mode, num_classes=branch_a.num_classes, **kwargs)

    def config_args(self) -> dict:
        """JSON-serialisable arguments that rebuild this model (branches by registered name and arguments)."""
        return {
            "branch_a": self.branch_a.arch_name, "branch_a_args": dict(self.branch_a.model_args),
            "branch_b": self.branch_b.arch_name, "branch_b_args": dict(self.branch_b.model_args),
            "mode": self.mode, "num_classes": self.num_classes,
            "branch_input_sizes": [list(s) for s in self.branch_input_sizes],
            "fusion_dim": self.fusion_dim,
            "drop_rate": self.drop.p, "train_branches": self.train_branches,
        }

    def set_branches_trainable(self, trainable: bool):
        self.train_branches = trainable
        for p in list(self.branch_a.parameters()) + list(self.branch_b.parameters()):
            p.requires_grad_(trainable)
        if not trainable:
            self.branch_a.eval()
            self.branch_b.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.train_branches:  # frozen branches keep their BatchNorm statistics
            self.branch_a.eval()
            self.branch_b.eval()
        return self

    def fusion_parameters(self):
        """The parameters that belong to the fusion part (not to either branch)."""
        branch = {id(p) for p in list(self.branch_a.parameters()) + list(self.branch_b.parameters())}
        return [p for p in self.parameters() if id(p) not in branch]

    # -- computation -------------------------------------------------------------------------------------------
    def gradcam_layers(self, input_size: int | None = None):
        """Each branch's target at the size that branch sees."""
        return [branch.gradcam_layers(size[-1])[0]
                for branch, size in zip((self.branch_a, self.branch_b), self.branch_input_sizes)]

    def branch_details(self, x):
        """Each branch's forward. ``x``: a tuple of the branches' own inputs (how the project feeds a fusion:
        :func:`fer_core.preprocess.build_transform` resizes each from the same crop), or one tensor, resized here
        to each branch's size."""
        if isinstance(x, (tuple, list)):
            xa, xb = x
        else:
            xa, xb = (resize(x, s[-1]) for s in self.branch_input_sizes)
        for t, size, name in ((xa, self.branch_input_sizes[0], "a"), (xb, self.branch_input_sizes[1], "b")):
            if tuple(t.shape[-2:]) != tuple(size):
                raise ValueError(f"branch {name} takes {tuple(size)} inputs, got {tuple(t.shape[-2:])}")
        return self.branch_a.forward_details(xa), self.branch_b.forward_details(xb)

    def fuse(self, det_a: dict, det_b: dict) -> dict:
        """Combine the branches' ``forward_details`` outputs: logits, fused features and branch weights."""
        za, zb, fa, fb = det_a["logits"], det_b["logits"], det_a["pooled"], det_b["pooled"]
        if self.mode == "late":
            probs = (za.softmax(1) + zb.softmax(1)) / 2
            w = za.new_full((za.shape[0], 2), 0.5)
            return {"logits": probs.clamp_min(1e-12).log(), "pooled": torch.cat([fa, fb], 1), "branch_weights": w}
        if self.mode in ("early", "joint"):
            d_a = fa.shape[1]
            fa_d, fb_d = self.drop(fa), self.drop(fb)
            part_a = F.linear(fa_d, self.head.weight[:, :d_a])
            part_b = F.linear(fb_d, self.head.weight[:, d_a:])
            norms = torch.stack([part_a.norm(dim=1), part_b.norm(dim=1)], 1)
            w = norms / norms.sum(1, keepdim=True).clamp_min(1e-12)
            return {"logits": part_a + part_b + self.head.bias, "pooled": torch.cat([fa, fb], 1), "branch_weights": w}
        ha, hb = self.proj_a(fa), self.proj_b(fb)
        scores = torch.cat([self.scorer(torch.cat([ha, za.softmax(1)], 1)),
                            self.scorer(torch.cat([hb, zb.softmax(1)], 1))], 1) + self.branch_prior
        w = scores.softmax(1)
        fused = w[:, :1] * ha + w[:, 1:] * hb
        logits = w[:, :1] * za + w[:, 1:] * zb + self.head(self.drop(fused))
        return {"logits": logits, "pooled": fused, "branch_weights": w}

    def forward_details(self, x) -> dict:
        det_a, det_b = self.branch_details(x)
        out = self.fuse(det_a, det_b)
        out["attention"] = {**{f"a_{k}": v for k, v in det_a["attention"].items()},
                            **{f"b_{k}": v for k, v in det_b["attention"].items()}}
        out["branches"] = {"a": det_a, "b": det_b}
        if "head_maps" in det_a:
            out["head_maps"] = det_a["head_maps"]
        return out

    def forward(self, x):
        return self.forward_details(x)["logits"]

    def branch_weights(self, x):
        return self.forward_details(x)["branch_weights"]


@register_model("fusion", family="fusion", input_size=(3, 224, 224), paper="ours (fusion attention)")
def fusion(**kwargs):
    return FusionNet(**kwargs)
