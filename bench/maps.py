"""The maps' path, in one run: one face read by the three shipped models with Grad-CAM and own attention, three ways.

* ``separate``: one Grad-CAM per map, as the ``grad-cam`` package runs it (a forward with the graph kept from the
  target layer on and a backward per model, :func:`fer_core.explain.gradcam_with_details`), then the fusion's
  Grad-CAM through its branches' kept graphs (a third backward): the page's path before the merged one;
* ``merged_torch``: the Analyzer with ``engine="torch"``: each model's part before its Grad-CAM target in torch
  without a graph, then ONE backward for the three maps (the faces copied into a branch's batch once per further
  score that needs its gradients);
* ``merged_onnx``: the Analyzer as the page runs it (``maps_dtype="auto"``: float32 beside ONNX Runtime), with the
  parts before the targets in ONNX Runtime, the two models side by side, the parts after them in float32;
* ``merged_onnx_bfloat16``: the same, the parts after the targets of the models that ask for it (ResNet+DDA) in a
  bfloat16 copy (``maps_dtype="bfloat16"``: a third copy of those weights, docs/memory.md).

Each is the models' wall time (p50 over --runs, the variants timed in turns) on the same crops, the ratios against
``separate``; also the whole photo with and without maps (decode, detection, crops, models) on the page's path (and
with maps in bfloat16), the largest difference between the maps of ``separate`` and ``merged_onnx`` (the same maps:
a check, not a timing), and between ``separate``'s and the bfloat16 copy's with their correlation.

    python -m bench.maps --json out.json [--runs 30] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.timing import add_page_options, p50_interleaved
from fer_core.explain import gradcam_with_details, gradcams_from_leaves, own_attention, resize_maps
from fer_core.images import load_image
from fer_core.predict import MODEL_KEYS, Analyzer
from fer_core.predict.slot import view_logits, views

ROOT = Path(__file__).resolve().parent.parent


def separate(analyzer: Analyzer, crops: dict, size: int = 224) -> dict:
    """The three maps, one backward each (the fusion's through its branches' kept graphs): ``{key: (cams, att)}``."""
    out, passes = {}, {}
    for key in ("ddamfn", "resnet_dda"):
        slot = analyzer.slots[key]
        c = crops[slot.data.crop]
        n, x = len(c), slot.batch(c)
        cams, det, leaves = gradcam_with_details(slot.model, views(slot, c, x), shown=n, reading=slot.reading())
        passes[key] = (det, leaves)
        out[key] = (resize_maps(torch.from_numpy(cams), size), own_attention(det["attention"], size)[:n])
    fusion = analyzer.slots["fusion"]
    (da, la), (db, lb) = passes["ddamfn"], passes["resnet_dda"]
    n = len(next(iter(crops.values())))
    with torch.enable_grad():
        fused = fusion.model.fuse(da, db)
    logits = fused["logits"]
    k = fusion.reading()(view_logits(logits.detach(), n)).argmax(1)
    cam_a, cam_b = gradcams_from_leaves(logits[:n].gather(1, k[:, None]), [la, lb], size)
    w = fused["branch_weights"].detach()[:n, :, None, None].numpy()
    out["fusion"] = (w[:, 0] * cam_a + w[:, 1] * cam_b, None)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_page_options(ap)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = {k: Path(a.weights_dir) / k for k in MODEL_KEYS}
    fast = Analyzer.from_pretrained(names, detector="yunet", device="cpu")
    fast16 = Analyzer.from_pretrained(names, detector="yunet", device="cpu", maps_dtype="bfloat16")
    eager = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch", maps_dtype="float32")
    rgb = load_image(a.photo)
    faces = fast.detect(rgb).faces[:1]
    crops = fast.crops(rgb, faces)
    res = {"date": time.strftime("%Y-%m-%d"), "threads": a.threads, "cpu": os.cpu_count(), "torch": torch.__version__,
           "photo": Path(a.photo).name, "faces": len(faces), "engine": fast.engine, "notes": fast.engine_notes,
           "maps_dtype": fast.maps_dtype, "maps_dtype_opt_in": fast16.maps_dtype}
    times = p50_interleaved({"separate": lambda: separate(eager, crops),
                             "merged_torch": lambda: eager._read(crops, True, None, 224, {}),
                             "merged_onnx": lambda: fast._read(crops, True, None, 224, {}),
                             "merged_onnx_bfloat16": lambda: fast16._read(crops, True, None, 224, {}),
                             "photo_with_maps": lambda: fast.analyze(rgb, maps=True),
                             "photo_with_maps_bfloat16": lambda: fast16.analyze(rgb, maps=True),
                             "photo_without_maps": lambda: fast.analyze(rgb)}, a.runs)
    res.update({f"{k}_ms": v for k, v in times.items()})
    for name in ("merged_torch", "merged_onnx", "merged_onnx_bfloat16"):
        res[f"{name}_ratio"] = res["separate_ms"] / res[f"{name}_ms"]
    stages = [fast.analyze(rgb, maps=True).timings_ms for _ in range(a.runs)]
    res["photo_with_maps_stages_ms"] = {k: float(np.median([s[k] for s in stages])) for k in stages[0]}
    ref, got = separate(eager, crops), fast._read(crops, True, None, 224, {})[0]
    res["max_map_difference"] = {k: float(np.abs(ref[k][0][0] - got[k].gradcam).max()) for k in MODEL_KEYS}
    b16 = fast16._read(crops, True, None, 224, {})[0]
    res["bfloat16_maps_against_float32"] = {
        k: {"max_difference": float(np.abs(ref[k][0][0] - b16[k].gradcam).max()),
            "correlation": float(np.corrcoef(ref[k][0][0].ravel(), b16[k].gradcam.ravel())[0, 1])} for k in MODEL_KEYS}
    res["bfloat16_speedup_photo_with_maps"] = res["photo_with_maps_ms"] / res["photo_with_maps_bfloat16_ms"]
    print(json.dumps(res, indent=2), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
