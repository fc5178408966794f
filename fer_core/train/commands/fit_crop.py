"""Fit the crop spec (box scale, vertical offset, eye alignment) and measure the detection rate through YuNet, on
FER+'s selection slice of train, so that the page's crops look like the training images.

    python train_scripts/fit_crop.py --data cache:.data/ferplus.npz.xz --limit 1000 --json crop_fit.json

Each crop is placed on a canvas as :mod:`fer_core.through_detector` does; the detections and the models'
readings of the crops themselves are made once. The criterion needs no labels: how often the models' reading
through the detector agrees with their reading of the crop itself (mean over the shown models), searched
coordinate by coordinate (box scale, then alignment, then the vertical offset). The geometry of the detections
(the box scale that would reproduce the crop, the box centre's offset, the eyes' angle) is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fer_core.data.holdout import only, read_list
from fer_core.faces import YUNET_EMBEDDED, YuNetDetector
from fer_core.predict import MODEL_KEYS, Analyzer
from fer_core.preprocess import FER_CROP
from fer_core.through_detector import detect_all, evaluate_through_detector
from fer_core.train.setup import _read_split


def geometry(faces, side: int, crop_side: float) -> dict:
    found = [f for f in faces if f is not None]
    pct = lambda v: [round(float(x), 3) for x in np.percentile(v, [10, 50, 90])]  # noqa: E731
    return {
        "box_scale_that_reproduces_the_crop": pct([crop_side / max(f.box[2], f.box[3]) for f in found]),
        "centre_offset_down_by_box_height": pct([(f.box[1] + f.box[3] / 2 - side / 2) / f.box[3] for f in found]),
        "eye_angle_deg": pct([np.degrees(np.arctan2(f.landmarks[1][1] - f.landmarks[0][1],
                                                    f.landmarks[1][0] - f.landmarks[0][0])) for f in found
                              if f.landmarks is not None]),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="cache:.data/ferplus.npz.xz")
    ap.add_argument("--select", default="ferplus", help="the selection slice of train (never FER+ valid)")
    ap.add_argument("--limit", type=int, default=1000, help="first N images of the slice (0: all)")
    ap.add_argument("--thresholds", default="0.7,0.6,0.5", help="YuNet score thresholds whose detection rate to print")
    ap.add_argument("--threshold", type=float, default=None, help="the one to fit with (default: the detector's)")
    ap.add_argument("--box-scales", default="0.9,0.95,1.0,1.05,1.1,1.15")
    ap.add_argument("--y-offsets", default="-0.04,0.0,0.04")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    path, names = read_list(a.select)
    ds = only(_read_split(a.data, "train", "majority"), names, path.name)
    if a.limit:
        ds.images, ds.labels = ds.images[:a.limit], ds.labels[:a.limit]
    out = {"data": f"{a.data} train: {path.name}", "n": len(ds), "detection_rate": {}}
    kw = {} if a.threshold is None else {"score_threshold": a.threshold}
    analyzer = Analyzer.from_pretrained({k: k for k in MODEL_KEYS}, detector=YuNetDetector(YUNET_EMBEDDED, **kw))
    fitting_with = analyzer.detector
    for th in (float(v) for v in a.thresholds.split(",")):
        analyzer.detector = YuNetDetector(YUNET_EMBEDDED, score_threshold=th)
        _, found = detect_all(analyzer, ds.images)
        out["detection_rate"][str(th)] = float(np.mean([f is not None for f in found]))
        print(f"YuNet threshold {th}: {out['detection_rate'][str(th)]:.2%} of the faces found", flush=True)
    analyzer.detector = fitting_with
    side, faces = detect_all(analyzer, ds.images, progress=True)
    out["threshold"] = analyzer.detector.det.getScoreThreshold()
    out["geometry"] = geometry(faces, side, ds.images.shape[1] * 4.0)
    print(json.dumps(out["geometry"]), flush=True)
    on_crops = analyzer.read(list(ds.images))
    tried = {}

    def score(spec) -> float:
        if spec not in tried:
            rep = evaluate_through_detector(analyzer, ds, spec=spec, faces=faces, on_crops=on_crops)
            tried[spec] = rep
            agree = np.mean([m["agreement_with_crops"] for m in rep["models"].values()])
            print(f"box {spec.box_scale:.2f} y {spec.y_offset:+.2f} align {spec.align}: agreement {agree:.4f}; "
                  + ", ".join(f"{k} {m['through_detector']['accuracy']:.4f}" for k, m in rep["models"].items()),
                  flush=True)
        return float(np.mean([m["agreement_with_crops"] for m in tried[spec]["models"].values()]))

    best = FER_CROP
    for field, values in (("box_scale", [float(v) for v in a.box_scales.split(",")]), ("align", ["eyes", "none"]),
                          ("y_offset", [float(v) for v in a.y_offsets.split(",")])):
        best = max((replace(best, **{field: v}) for v in values), key=score)
    out["best"] = best.to_config()
    out["tried"] = [{"crop": s.to_config(), "agreement": float(np.mean([m["agreement_with_crops"]
                                                                         for m in r["models"].values()])),
                     "models": r["models"]} for s, r in tried.items()]
    out["seconds"] = round(time.time() - t0)
    print(f"best: {out['best']} ({out['seconds']} s)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
