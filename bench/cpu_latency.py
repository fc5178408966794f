"""CPU latency per face, all three models with both maps (Grad-CAM + own attention), 2 threads:
our pipeline (fer_core.predict.Analyzer: one forward per branch serving logits, own attention and a cheap
Grad-CAM; the fusion reusing the branches' features) against a naive baseline in the same process (the three
models run independently, each with the grad-cam package's own class of the variant the page draws (LayerCAM:
``fer_core.explain.CAM``) run with its default full backward, and its own forward for the attention maps; the fusion
runs both branches again). Both include decoding, face detection and
cropping of the same photo.

    python -m bench.cpu_latency --json bench_cpu.json
    python -m bench.cpu_latency --weights-dir weights          # the shipped models (default: their
                                                               # architectures, untrained: same compute)
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from bench.timing import measure
from fer_core import create_model
from fer_core.explain import CAM, CAM_VARIANTS, gradcam_with_details, own_attention
from fer_core.faces import YUNET_EMBEDDED, YuNetDetector, crop_face, detect_faces, make_detector
from fer_core.images import load_image
from fer_core.predict import MODEL_KEYS, Analyzer
from fer_core.preprocess import build_transform, resolve_data_config
from fer_core.weights import build_config

ROOT = Path(__file__).resolve().parent.parent


def build_models(a):
    """The shipped weights (--weights-dir), or untrained models of the shipped architectures (same compute)."""
    if a.weights_dir:
        slots = Analyzer.from_pretrained({k: Path(a.weights_dir) / k for k in MODEL_KEYS}, detector="haar").shown
        return {k: slot.model for k, slot in slots.items()}  # the fusion holds the two branch modules
    torch.manual_seed(0)
    ddamfn = create_model("ddamfn", input_size=a.ddamfn_size).eval()
    resnet = create_model(a.resnet, **json.loads(a.resnet_args)).eval()
    fusion = create_model("fusion", branch_a=ddamfn, branch_b=resnet,
                          branch_input_sizes=[(a.ddamfn_size,) * 2, (a.resnet_size,) * 2]).eval()
    models = {"ddamfn": ddamfn, "resnet_dda": resnet, "fusion": fusion}
    sizes = {"ddamfn": a.ddamfn_size, "resnet_dda": a.resnet_size, "fusion": max(a.ddamfn_size, a.resnet_size)}
    for k, m in models.items():
        m.pretrained_cfg = build_config(m, label_set="ferplus", input_size=(3, sizes[k], sizes[k]),
                                        tta_flip=a.tta_flip)
        m.temperature = 1.0
    return models


def naive(models, rgb, detector):
    """Each model on its own: forward for the attention maps, then the page's map variant from the package, with
    a full backward."""
    package_cam = CAM_VARIANTS[CAM][0]
    det = detect_faces(rgb, detector)
    for m in models.values():  # as a model loaded for training-style use: every parameter requires grad
        for p in m.parameters():
            p.requires_grad_(True)
    for key, m in models.items():
        dc = resolve_data_config(m)
        transform = build_transform(dc)
        crops = [crop_face(rgb, f, dc.crop) for f in det.faces]
        x = transform(crops)
        with torch.no_grad():
            out = m.forward_details(x)
            logits = out["logits"]
            if dc.tta_flip:  # the mirror image as a second forward, averaged
                logits = (logits + m(transform(crops, flip=True))) / 2
            probs = (logits / dc.temperature).softmax(1)
        if key != "fusion":
            own_attention(out["attention"], dc.input_size)
        # the package reads one input tensor: for the fusion its own (its branches resize it)
        cam_input = x[1] if key == "fusion" and isinstance(x, tuple) else x
        with package_cam(model=m, target_layers=m.gradcam_layers(dc.input_size)) as cam:
            cam(input_tensor=cam_input, targets=[ClassifierOutputTarget(int(k)) for k in probs.argmax(1)])
        for p in m.parameters():
            p.grad = None


def gradcam_costs(models, runs: int) -> dict:
    """Grad-CAM alone, per branch: gradients from the target layer on (ours) against a full backward."""
    out = {}
    for key in ("ddamfn", "resnet_dda"):
        m = models[key]
        size = m.pretrained_cfg["input_size"][1]
        x = torch.randn(1, 3, size, size)
        for p in m.parameters():
            p.requires_grad_(True)
        with torch.inference_mode():
            fwd = float(np.median(measure(lambda: m(x), runs)))
        cheap = float(np.median(measure(lambda: gradcam_with_details(m, x, cheap=True), runs)))
        full = float(np.median(measure(lambda: gradcam_with_details(m, x, cheap=False), runs)))
        out[key] = {"forward_only": fwd, "cheap": cheap, "full_backward": full,
                    "cam_cost_ratio": (full - fwd) / max(cheap - fwd, 1e-6)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="CPU latency per face: our pipeline vs a naive baseline.")
    ap.add_argument("--photo", default=str(ROOT / "demo/examples/grace_hopper.jpg"))
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--ddamfn-size", type=int, default=64)
    ap.add_argument("--resnet", default="resnet18_dda")
    ap.add_argument("--resnet-size", type=int, default=80)
    ap.add_argument("--resnet-args", default='{"dda_stages": [3, 4]}', help="JSON arguments of the ResNet+DDA")
    ap.add_argument("--yunet", default=str(YUNET_EMBEDDED))
    ap.add_argument("--no-tta-flip", dest="tta_flip", action="store_false",
                    help="untrained models without test-time flip (the shipped weights use it)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = build_models(a)
    detector = YuNetDetector(a.yunet) if Path(a.yunet).exists() else make_detector("auto")[0]
    rgb = load_image(a.photo)
    analyzer = Analyzer(models, detector=detector)
    stages = []

    def ours():
        stages.append(analyzer.analyze(rgb, maps=True).timings_ms)

    ours_ms = measure(ours, a.runs)
    live_ms = measure(lambda: analyzer.analyze(rgb, maps=False), a.runs)
    naive_ms = measure(lambda: naive(models, rgb, detector), max(5, a.runs // 3))
    res = {
        "device": f"cpu, {a.threads} threads", "date": time.strftime("%Y-%m-%d"), "detector": detector.name,
        "tta_flip": all(m.pretrained_cfg.get("tta_flip") for m in models.values()),
        "models": {k: {"architecture": m.arch_name, "args": m.pretrained_cfg["model_args"] if k != "fusion" else
                       {"mode": m.mode}, "input": m.pretrained_cfg["input_size"][1]} for k, m in models.items()},
        "faces": len(analyzer.analyze(rgb, maps=False).faces),
        "ours_p50_ms": float(np.median(ours_ms)), "ours_p95_ms": float(np.percentile(ours_ms, 95)),
        "naive_p50_ms": float(np.median(naive_ms)),
        "live_no_maps_p50_ms": float(np.median(live_ms)),
        "stages_p50_ms": {k: float(np.median([s[k] for s in stages[2:]])) for k in stages[-1]},
    }
    res["ratio"] = res["naive_p50_ms"] / res["ours_p50_ms"]
    res["gradcam_ms"] = gradcam_costs(models, a.runs)
    res["live_results_per_s"] = 1000 / res["live_no_maps_p50_ms"]
    print(f"ours p50 {res['ours_p50_ms']:.0f} ms (p95 {res['ours_p95_ms']:.0f}), naive p50 {res['naive_p50_ms']:.0f} ms: "
          f"{res['ratio']:.2f}x faster; live (no maps) {res['live_no_maps_p50_ms']:.0f} ms = "
          f"{res['live_results_per_s']:.1f} results/s; stages {res['stages_p50_ms']}; Grad-CAM {res['gradcam_ms']}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
