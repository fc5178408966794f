"""How often a class-activation map is blank (zero everywhere: nothing to show) on FER+ valid, per shipped model,
target layer and variant of the ``grad-cam`` package, for the label the page shows (the top of the
flip-averaged logits; the map is of the face alone, as on the page).

    python -m bench.blank_maps --json out.json [--limit N]

Every variant is computed from the same activations and gradients at each candidate layer (one forward with the
graph and one backward per explained score), with the package's own formulas: GradCAM (channel weights = the
spatial mean of the gradients), HiResCAM (the element-wise product of gradients and activations), LayerCAM (the
positive gradients times the activations), GradCAM++ and XGradCAM; each summed over channels, then the ReLU and
the package's scaling (minus the minimum, over the maximum). A map is blank when its scaled maximum is under
1e-3 (a map that is zero, or constant, everywhere). The fusion's map mixes its branches' maps of the fused score
by its branch weights, as the page draws it: blank when both are. Float32 throughout (the page may run
ResNet+DDA's part after its target in bfloat16).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fer_core.data.cache import load_cache
from fer_core.explain import CAM_VARIANTS
from fer_core.preprocess import build_transform, resolve_data_config
from fer_core.weights import load_weights

ROOT = Path(__file__).resolve().parent.parent
BLANK = 1e-3


def candidate_layers(model) -> dict:
    """Each branch's candidate targets by name: the shipped target and a finer one (and, for ResNet+DDA, the
    coarser stage 4)."""
    if hasattr(model, "features"):  # DDAMFN
        f = model.features
        return {"features.8 (shipped, 4x4)": f[8], "features.7 (4x4, before the 1x1 block)": f[7],
                "features.5 (8x8)": f[5]}
    return {"layer3 (shipped, 5x5)": model.layer3[-1], "layer4 (3x3)": model.layer4[-1],
            "layer2 (10x10)": model.layer2[-1]}


def variants(act: torch.Tensor, grad: torch.Tensor) -> dict[str, torch.Tensor]:
    """``B x h x w`` maps before the ReLU, by the grad-cam package's formula of each variant
    (:data:`fer_core.explain.CAM_VARIANTS`, tested equal to the package's classes)."""
    return {name: formula(act, grad) for name, (_, formula) in CAM_VARIANTS.items()}


def blank(cam: torch.Tensor) -> torch.Tensor:
    """Per map: zero (or constant) everywhere after the ReLU and the package's scaling."""
    cam = cam.clamp(min=0).flatten(1)
    span = cam.amax(1) - cam.amin(1)
    return span / (1e-7 + span) < BLANK


class Recorder:
    """Forward hooks that keep each candidate layer's output (the graph to the logits kept)."""

    def __init__(self, layers: dict):
        self.out = {}
        self.handles = [m.register_forward_hook(self._keep(name)) for name, m in layers.items()]

    def _keep(self, name):
        def hook(module, args, output):
            self.out[name] = output
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


def count_batch(fusion, xs, xfs, counts):
    """One batch: each branch's own score and the fusion's through each branch, blank maps counted."""
    branches = {"ddamfn": fusion.branch_a, "resnet_dda": fusion.branch_b}
    recs = {k: Recorder(candidate_layers(m)) for k, m in branches.items()}
    try:
        with torch.no_grad():
            mirror = {k: branches[k].forward_details(xfs[k]) for k in branches}
            fused_mirror = fusion.fuse(mirror["ddamfn"], mirror["resnet_dda"])["logits"]
        dets = {}
        for k, m in branches.items():
            dets[k] = m.forward_details(xs[k].requires_grad_(True))
        fused = fusion.fuse(dets["ddamfn"], dets["resnet_dda"])["logits"]
        scores = {k: dets[k]["logits"].gather(1, (dets[k]["logits"] + mirror[k]["logits"]).argmax(1, keepdim=True))
                  for k in branches}
        scores["fusion"] = fused.gather(1, (fused + fused_mirror).argmax(1, keepdim=True))
        n = len(fused)
        fusion_blank = {}
        for reader in ("ddamfn", "resnet_dda", "fusion"):
            for k in branches if reader == "fusion" else (reader,):
                acts = recs[k].out
                grads = torch.autograd.grad(scores[reader].sum(), list(acts.values()), retain_graph=True)
                for (layer, act), grad in zip(acts.items(), grads):
                    for variant, cam in variants(act.detach(), grad).items():
                        b = blank(cam)
                        if reader == "fusion":
                            key = (layer, variant)
                            fusion_blank.setdefault(key, []).append(b)
                        else:
                            counts.setdefault(reader, {}).setdefault(layer, {}).setdefault(variant, 0)
                            counts[reader][layer][variant] += int(b.sum())
        # the fusion's map is blank when both branches' are; pair the branches' layers in order
        la, lb = (list(candidate_layers(m)) for m in branches.values())
        for (a, b) in zip(la, lb):
            for variant in CAM_VARIANTS:
                both = fusion_blank[(a, variant)][0] & fusion_blank[(b, variant)][0]
                name = f"{a} + {b}"
                counts.setdefault("fusion", {}).setdefault(name, {}).setdefault(variant, 0)
                counts["fusion"][name][variant] += int(both.sum())
        return n
    finally:
        for r in recs.values():
            r.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--data", default=str(ROOT / ".data/ferplus.npz.xz"),
                    help="FER+ as train_scripts/prepare_data.py caches it (valid, majority labels)")
    ap.add_argument("--limit", type=int, default=0, help="the first N faces only")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one beside a training run)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    valid = load_cache(a.data)["valid"]
    images = valid.images[:a.limit] if a.limit else valid.images
    fusion = load_weights(Path(a.weights_dir) / "fusion").eval()  # with its branches, as shipped
    for p in fusion.parameters():
        p.requires_grad_(False)
    tfs = {k: build_transform(resolve_data_config(m)) for k, m in (("ddamfn", fusion.branch_a),
                                                                    ("resnet_dda", fusion.branch_b))}
    counts, n, t0 = {}, 0, time.perf_counter()
    for i in range(0, len(images), a.batch):
        crops = torch.from_numpy(images[i:i + a.batch])
        xs = {k: tf(crops, False) for k, tf in tfs.items()}
        xfs = {k: tf(crops, True) for k, tf in tfs.items()}
        with torch.enable_grad():
            n += count_batch(fusion, xs, xfs, counts)
    wall = time.perf_counter() - t0
    share = {m: {layer: {v: c / n for v, c in row.items()} for layer, row in layers.items()}
             for m, layers in counts.items()}
    res = {"date": time.strftime("%Y-%m-%d"), "faces": n, "wall_s": round(wall, 1), "blank_share": share,
           "blank_count": counts}
    for m, layers in share.items():
        for layer, row in layers.items():
            print(f"{m:10s} {layer:45s} " + "  ".join(f"{v} {100 * s:5.2f}%" for v, s in row.items()), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
