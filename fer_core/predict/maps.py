"""The maps path: each model's reading with its Grad-CAM map and its own attention, for the faces only (their mirror
images share the forward passes but get no map), of the label shown (or ``target``):

* each model's part before its Grad-CAM target's output (``forward_prefix``) runs without a graph (ONNX Runtime
  where attached, the models side by side); the rest (``forward_suffix``) keeps its graph from those activations
  on (parameters frozen) and yields logits and own attention in the same pass;
* a fusion reads its branches' passes (:meth:`FusionNet.fuse`);
* ONE backward pass gives the gradients of every explained score at every target layer. A model's own score and a
  fusion's both reach that model's activations; so that their gradients stay apart, the faces enter the model's
  batch once more for each further score that needs them (rows never mix in eval mode: the copies cost one row
  each, where a second backward through the model would cost its weights again).
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from ..explain import gradcam_maps, model_lock, own_attention, resize_maps
from .engines import each_model
from .slot import Slot, view_logits, views


def each_tensor(obj, fn):
    """``fn`` applied to every tensor of a (nested) forward-details structure, the rest kept."""
    if isinstance(obj, dict):
        return {k: each_tensor(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(each_tensor(v, fn) for v in obj)
    return fn(obj) if isinstance(obj, torch.Tensor) else obj


def first_rows(obj, n: int):
    """The first ``n`` rows of every batch tensor in a (nested) forward-details structure."""
    return each_tensor(obj, lambda t: t[:n] if t.dim() > 0 else t)


def take_rows(obj, index: torch.Tensor):
    """The rows ``index`` of every batch tensor in a (nested) forward-details structure."""
    return each_tensor(obj, lambda t: t.index_select(0, index) if t.dim() > 0 else t)


def read_with_maps(an, crops: dict, n: int, target, display_size: int, timings: dict, setting: str) -> dict:
    """``{key: [ModelResult per face]}`` with maps, for the analyzer ``an`` (see the module's docstring)."""
    g = _Graph(an, n, target, setting, timings)
    with contextlib.ExitStack() as stack:
        for _, m in sorted({id(s.model): s.model for s in an.slots.values()}.items()):
            stack.enter_context(model_lock(m))  # in one order, so two requests never wait on each other
        stack.enter_context(torch.enable_grad())  # the parameters are frozen: no graph before the leaves
        g.forward(crops)
        t1 = time.perf_counter()
        g.backward()
    done = {}
    for key in an.singles():
        slot = an.slots[key]
        if slot.hidden:
            continue
        cams = resize_maps(torch.from_numpy(g.cam(key, key, slot.size)), display_size)
        att = own_attention(first_rows(g.dets[key], n)["attention"], display_size)
        done[key] = an.results(slot, g.dets[key], g.xs[key], n, setting, cams, att)
    for key, (ka, kb) in an.branch_keys.items():
        slot, out = an.slots[key], g.fused[key]
        w = out["branch_weights"].detach()[:n]
        cams = mix(w, g.cam(ka, key, display_size), g.cam(kb, key, display_size))
        att = mix(w, own_attention(first_rows(g.dets[ka], n)["attention"], display_size),
                  own_attention(first_rows(g.dets[kb], n)["attention"], display_size))
        done[key] = an.results(slot, out, slot.batch(crops[slot.data.crop]), n, setting, cams, att)
    timings["gradcam"] = time.perf_counter() - t1
    return done


class _Graph:
    """One maps pass: the forward passes with their graphs from each Grad-CAM target on, then one backward."""

    def __init__(self, an, n, target, setting, timings):
        self.an, self.n, self.target, self.setting, self.timings = an, n, target, setting, timings
        self.singles = an.singles()
        self.readers = {k: ([k] if not an.slots[k].hidden else []) for k in self.singles}  # whose map needs them
        for f, ks in an.branch_keys.items():
            for k in ks:
                self.readers[k].append(f)
        self.rows, self.full, self.dets, self.xs, self.leaves, self.fused = {}, {}, {}, {}, {}, {}
        self.scores, self.grads = [], {}

    def forward(self, crops) -> None:
        an, n, dev = self.an, self.n, self.an.device
        for key, (self.xs[key], v, pre) in prefixes(an, self.singles, crops, self.timings).items():
            t1 = time.perf_counter()
            slot = an.slots[key]
            copies = max(0, len(self.readers[key]) - 1)
            pre = take_rows(pre, torch.cat([torch.arange(v * n)] + [torch.arange(n)] * copies).to(dev))
            self.leaves[key] = pre["act"].requires_grad_(True)
            self.full[key] = det = suffix(slot, pre)
            self.dets[key] = first_rows(det, v * n)
            # reader j's rows: the faces (their own copy for j > 0), then the other views
            others = torch.arange(n, v * n, device=dev)
            self.rows[key] = {r: torch.cat([torch.arange(start, start + n, device=dev), others])
                              for r, start in zip(self.readers[key], [0] + [v * n + i * n for i in range(copies)])}
            if not slot.hidden:
                own = take_rows(det, self.rows[key][key])["logits"]
                self.scores.append(explained(slot, own, n, self.target, self.setting))
            self.timings[key] += time.perf_counter() - t1
        for key, (ka, kb) in an.branch_keys.items():
            t1 = time.perf_counter()
            slot = an.slots[key]
            self.fused[key] = out = slot.model.fuse(take_rows(self.full[ka], self.rows[ka][key]),
                                                    take_rows(self.full[kb], self.rows[kb][key]))
            self.scores.append(explained(slot, out["logits"], n, self.target, self.setting))
            self.timings[key] = time.perf_counter() - t1

    def backward(self) -> None:
        grads = torch.autograd.grad(torch.cat(self.scores).sum(), [self.leaves[k] for k in self.singles])
        self.grads = dict(zip(self.singles, grads))

    def cam(self, key: str, reader: str, size: int) -> np.ndarray:
        """The Grad-CAM maps at ``key``'s target of the score ``reader`` explains, for the faces."""
        n = self.n
        return gradcam_maps([(self.leaves[key][:n], self.grads[key][self.rows[key][reader][:n]])], size)


def suffix(slot: Slot, pre: dict) -> dict:
    """The part after the Grad-CAM target, with its graph: in the slot's bfloat16 copy where it has one (its float
    outputs differ from float32's by what FER+ valid measures: BENCHMARKS "The maps")."""
    if slot.lean is None:
        return slot.model.forward_suffix(pre)
    out = slot.lean.forward_suffix({**pre, "act": pre["act"].to(torch.bfloat16)})
    return each_tensor(out, lambda t: t.float() if t.is_floating_point() else t)


def prefixes(an, keys, crops, timings) -> dict:
    """Each model's part before its Grad-CAM target (ONNX Runtime where attached, side by side on the CPU; else
    torch without a graph) on the faces and their other views: ``{key: (faces' input, number of views,
    outputs)}``. (Starting a model's rest in torch while another's part still runs was measured slower: the
    threads then outnumber the cores.)"""
    out = {}

    def run(key):
        t1 = time.perf_counter()
        slot, c = an.slots[key], crops[an.slots[key].data.crop]
        x = slot.batch(c)
        batch = views(slot, c, x).to(an.device)
        if slot.prefix is not None:
            pre = each_tensor(slot.prefix(batch), lambda t: t.to(an.device))
        else:
            with torch.no_grad():
                pre = slot.model.forward_prefix(batch)
        out[key] = (x, len(batch) // len(x), pre)
        timings[key] = time.perf_counter() - t1

    each_model(keys, run, an.device.type == "cpu" and all(an.slots[k].prefix is not None for k in keys))
    return out


def explained(slot: Slot, logits, n, target, setting) -> torch.Tensor:
    """The scores Grad-CAM explains: per face, the logit of the label shown (the top of the setting's reading of
    its view-averaged logits) or of ``target``."""
    avg = view_logits(logits.detach().float(), n)
    k = (slot.reading(setting)(avg).argmax(1) if target is None
         else torch.full((n,), slot.labels.index(target), dtype=torch.long, device=avg.device))
    return logits[:n].gather(1, k[:, None])


def mix(weights, map_a: np.ndarray, map_b: np.ndarray) -> np.ndarray:
    """Each branch's map (normalised) weighted by that face's weight of the branch."""
    w = weights.detach().float().cpu().numpy()[:, :, None, None]
    return (w[:, 0] * map_a + w[:, 1] * map_b).astype(np.float32)
