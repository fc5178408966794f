"""What a deeper ResNet+DDA backbone costs the page: one branch's work per face, ResNet34+DDA (and ResNet50+DDA)
against the shipped architecture, ResNet18+DDA, timed in turns in the same run. Untrained models of each
architecture (the same compute as trained ones), DDA on stages 3-4, the face and its mirror image in one batch as the
page reads them: the reading alone (inference forward) and the reading with its maps (one forward with the cheap
Grad-CAM, the method ``fer_core.predict.Analyzer`` uses). Float32 throughout: the Analyzer runs the part after the
Grad-CAM target in bfloat16 on CPUs that compute it natively (``FER_MAPS_DTYPE=auto``), so these are the ratios of
the float32 maps path.

    python -m bench.backbones                      # 80 px, ResNet34+DDA against ResNet18+DDA
    python -m bench.backbones --depths 18 34 50 --size 80 --runs 60
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.timing import p50_interleaved
from fer_core import create_model
from fer_core.explain import gradcam_with_details
from fer_core.models.layers import count_params

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser(description="One ResNet+DDA branch's work per face, by backbone depth.")
    ap.add_argument("--depths", type=int, nargs="+", default=[18, 34], help="the first is the baseline")
    ap.add_argument("--size", type=int, default=80, help="input size in pixels (the shipped branch reads 80)")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    models = {d: create_model(f"resnet{d}_dda", dda_stages=(3, 4), num_classes=8).eval() for d in a.depths}
    x = torch.randn(2, 3, a.size, a.size)  # the face and its mirror image

    def reading(m):
        with torch.inference_mode():
            m(x)

    timed = {}
    for d, m in models.items():
        timed[(d, "reading")] = lambda m=m: reading(m)
        timed[(d, "maps")] = lambda m=m: gradcam_with_details(m, x, shown=1, cheap=True)
    p50 = p50_interleaved(timed, a.runs)
    base = a.depths[0]
    res = {"size": a.size, "threads": a.threads, "runs": a.runs, "baseline": f"resnet{base}_dda", "models": {}}
    for d, m in models.items():
        row = {"params_m": round(count_params(m) / 1e6, 2), "reading_ms": round(p50[(d, "reading")], 1),
               "maps_ms": round(p50[(d, "maps")], 1),
               "reading_ratio": round(p50[(d, "reading")] / p50[(base, "reading")], 2),
               "maps_ratio": round(p50[(d, "maps")] / p50[(base, "maps")], 2)}
        res["models"][f"resnet{d}_dda"] = row
        print(f"ResNet{d}+DDA at {a.size} px: {row['params_m']} M parameters; reading p50 {row['reading_ms']} ms "
              f"({row['reading_ratio']}x ResNet{base}+DDA), with maps {row['maps_ms']} ms ({row['maps_ratio']}x)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
