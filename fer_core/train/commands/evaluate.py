"""Evaluate weights on a dataset split: accuracy, balanced accuracy, per-class P/R/F1, confusion matrix, ECE.

    fer-evaluate --model ddamfn --dataset ferplus --split valid --json out.json      # FER+ from $FER_DATA/ferplus
    fer-evaluate --model weights/resnet_dda --dataset fer2013 --split val
    fer-evaluate --model runs/ddamfn/export --dataset folder --data-root my_faces/
    fer-evaluate --model fusion --dataset ferplus --data-root /data/ferplus --split valid --through-detector

--model takes a registered weight name (Hub, then weights/) or a weights folder. Labels are matched by name;
accuracy is over the classes model and dataset share. Writes --json and a confusion-matrix PNG beside it.
--through-detector also reads every crop the way the page reads a photo (fer_core.through_detector: enlarged
on a grey canvas, found by YuNet, cropped by the weight's crop spec) and reports the detection rate and the
accuracy that way beside the crop accuracy.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fer_core.data import read_dataset
from fer_core.plots import plot_confusion
from fer_core.train.evaluation import evaluate_model
from fer_core.weights import load_pretrained


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="Evaluate weights on a dataset split.")
    ap.add_argument("--model", required=True, help="registered weight name or weights folder")
    ap.add_argument("--dataset", required=True, choices=("ferplus", "fer2013", "rafdb", "affectnet", "affectnet7", "folder"))
    ap.add_argument("--data-root", default=None, help="the dataset's folder (default: $FER_DATA/<dataset>)")
    ap.add_argument("--split", default=None, help="not needed for --dataset folder")
    ap.add_argument("--protocol", default="majority", choices=("majority", "probability"))
    ap.add_argument("--tta", choices=("config", "on", "off"), default="config", help="test-time flip")
    ap.add_argument("--json", default=None, help="write the report here (and a confusion PNG beside it)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--through-detector", action="store_true", help="also through YuNet and the crop spec")
    ap.add_argument("--scale", type=float, default=4.0, help="through the detector: enlargement of each crop")
    ap.add_argument("--canvas", type=float, default=2.0, help="through the detector: canvas side / enlarged crop")
    ap.add_argument("--whole-image-if-none", action="store_true",
                    help="through the detector: read the whole canvas when no face is found (as the page's option)")
    a = ap.parse_args(argv)
    if a.dataset != "folder" and not a.split:
        ap.error("--split is required for this dataset")
    t0 = time.time()
    ds = read_dataset(a.dataset, a.data_root, a.split, a.protocol)  # first: missing data says what to download
    model = load_pretrained(a.model)
    rep = evaluate_model(model, ds, tta_flip=None if a.tta == "config" else a.tta == "on", device=a.device,
                         progress=True)
    rep.update(model=str(a.model), split=a.split, seconds=round(time.time() - t0, 1))
    print(f"{ds.name}: n={rep['n']} accuracy {rep['accuracy']:.4f} balanced {rep['balanced_accuracy']:.4f} "
          f"ECE {rep['ece']:.4f} ({rep['seconds']} s)")
    for name, m in rep["per_class"].items():
        print(f"  {name:10s} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} n={m['support']}")
    for key in ("classes_only_in_model", "classes_only_in_dataset"):
        if rep[key]:
            print(f"  {key.replace('_', ' ')}: {rep[key]}")
    if a.through_detector:
        from fer_core.predict import Analyzer
        from fer_core.through_detector import evaluate_through_detector

        analyzer = Analyzer({"model": model}, detector="yunet")
        det = evaluate_through_detector(analyzer, ds, scale=a.scale, canvas=a.canvas,
                                        whole_image_if_none=a.whole_image_if_none, progress=True)
        m = det.pop("models")["model"]
        rep["through_detector"] = dict(det, **m)
        print(f"through the detector: {det['detection_rate']:.2%} of the faces found; accuracy "
              f"{m['through_detector']['accuracy']:.4f} (balanced {m['through_detector']['balanced_accuracy']:.4f}) "
              f"against {m['crops']['accuracy']:.4f} on the crops; the readings agree on {m['agreement_with_crops']:.2%}")
    if a.json:
        out = Path(a.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rep, indent=2))
        plot_confusion(rep["confusion_matrix"], rep["labels"], out.with_suffix(".confusion.png"),
                       f"{a.model} on {ds.name}: acc {rep['accuracy']:.4f}")
        print(f"wrote {out}")
    return rep


def cli() -> int:
    """The console command: ``main`` without its returned figures (they are printed and written)."""
    main()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
