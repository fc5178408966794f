"""Ship a trained weight: store it compactly, measure the stored form, plot it, and write its model card.

    fer-export ~/.cache/fer/runs/ddamfn/export weights/ddamfn --storage float16
    fer-export ~/.cache/fer/runs/fusion/export weights/fusion --storage float16 \\
        --branch-refs branch_a=../ddamfn,branch_b=../resnet_dda

Steps: load SOURCE (a weights folder, e.g. a run's export/) -> write DEST in the chosen storage (float16 or
per-channel int8; a fusion refers to its branches' folders instead of copying them) -> load DEST back and
evaluate *that* on FER+ valid (majority protocol; on the crops, and through the detector as the page reads a photo)
and FER2013 val (7 classes, matched by name), a fusion beside the late fusion of its branches (the baseline it must
beat) -> record the metrics (and the source's float32 figures) in DEST/config.json -> confusion-matrix PNGs, the
training curves of the run, and a README.md model card.
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

from fer_core.card import render_model_card
from fer_core.data import dataset_root, missing_message, read_dataset
from fer_core.files import write_text_atomic
from fer_core.plots import plot_confusion
from fer_core.preprocess import FER_CROP, CropSpec
from fer_core.train.evaluation import evaluate_model, late_fusion_baseline
from fer_core.train.metrics import summarize
from fer_core.weights import STORAGE_DTYPES, load_weights, read_config, save_pretrained, write_config

# (key in config.json metrics, dataset kind, split, its name in the card)
EVALUATIONS = (("ferplus_valid", "ferplus", "valid", "FER+ valid (majority, ties dropped)"),
               ("fer2013_val", "fer2013", "val", "FER2013 val (7 classes)"))


def export(source, dest, *, storage="float16", branch_refs=None, data_roots=None, run_dir=None, fer_crop=False,
           through_detector=True, progress=True) -> dict:
    source, dest = Path(source), Path(dest)
    model = load_weights(source)
    config = dict(model.pretrained_cfg)
    prior = config.get("metrics", {})  # a run's export, or a folder this script wrote (measured again below)
    metrics = {"training": prior.get("training", prior)}  # the trainer's own figures (float32, selection split)
    config["metrics"] = {}
    if fer_crop:  # the project's fitted crop of FER-style images, at the weight's own crop size and colour
        own = CropSpec.from_config(config)
        config["crop"] = replace(FER_CROP, size=own.size, grayscale=own.grayscale).to_config()
    save_pretrained(model, dest, config, storage=storage, branch_refs=branch_refs)
    stored = load_weights(dest)  # what users load: evaluate exactly that
    roots = data_roots or {}
    for key, kind, split, title in EVALUATIONS:
        root = roots.get(kind)
        if root is None or not Path(root).exists():
            print(f"skipping {title}: {missing_message(kind, root)}", flush=True)
            continue
        balanced = bool(stored.pretrained_cfg.get("balanced"))
        ds = read_dataset(kind, root, split)
        rep = evaluate_model(stored, ds, progress=progress,
                             settings=("accurate", "balanced") if balanced else ("accurate",))
        metrics[key] = summarize(rep)
        if balanced:
            metrics[f"{key}_balanced"] = summarize(rep["balanced"])
            print(f"{title}, balanced setting: accuracy {rep['balanced']['accuracy']:.4f}, balanced "
                  f"{rep['balanced']['balanced_accuracy']:.4f}", flush=True)
        late = late_fusion_baseline(stored, ds, progress=progress)  # None unless a fusion with its branches' configs
        if late is not None:  # the baseline the fusion must beat, on the same faces
            metrics[f"{key}_late_fusion"] = summarize(late)
            print(f"{title}, late fusion of the branches: accuracy {late['accuracy']:.4f}, balanced "
                  f"{late['balanced_accuracy']:.4f}", flush=True)
        plot_confusion(rep["confusion_matrix"], rep["labels"], dest / f"confusion_{key}.png",
                       f"{config['architecture']} ({storage}) on {title}: acc {rep['accuracy']:.4f}")
        print(f"{title}: accuracy {rep['accuracy']:.4f}, balanced {rep['balanced_accuracy']:.4f}, "
              f"ECE {rep['ece']:.4f} (n={rep['n']})" + (f"; without test-time flip {rep['without_flip']['accuracy']:.4f}"
                                                        if rep["tta_flip"] else ""), flush=True)
    root = roots.get("ferplus")
    if through_detector and root is not None and Path(root).exists():
        metrics["ferplus_valid_through_detector"] = measure_through_detector(stored, read_dataset("ferplus", root,
                                                                                                 "valid"), progress)
    config = read_config(dest / "config.json")
    config["metrics"] = metrics
    write_config(dest, config)
    run_dir = Path(run_dir) if run_dir else source.parent
    if (run_dir / "curves.png").exists():
        shutil.copyfile(run_dir / "curves.png", dest / "curves.png")
    write_text_atomic(dest / "README.md", render_model_card(config, images=sorted(p.name for p in dest.glob("*.png"))))
    load_weights(dest)  # the folder as shipped still loads strictly
    return config


def measure_through_detector(model, ds, progress=True) -> dict:
    """FER+ valid as the page reads photos (fer_core.through_detector): the detection rate and the accuracy."""
    from fer_core.predict import Analyzer
    from fer_core.through_detector import evaluate_through_detector

    rep = evaluate_through_detector(Analyzer({"model": model}, detector="yunet"), ds, progress=progress)
    m = rep.pop("models")["model"]
    out = {"n": rep["n"], "detection_rate": rep["detection_rate"], **m["through_detector"],
           "crop_accuracy": m["crops"]["accuracy"], "agreement_with_crops": m["agreement_with_crops"],
           "scale": rep["scale"], "canvas": rep["canvas"]}
    print(f"through the detector: {out['detection_rate']:.2%} found, accuracy {out['accuracy']:.4f} (balanced "
          f"{out['balanced_accuracy']:.4f}) against {out['crop_accuracy']:.4f} on the crops", flush=True)
    return out


def _refs(text: str) -> dict | None:
    return dict(kv.split("=", 1) for kv in text.split(",")) if text else None


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a weights folder (a run's export/)")
    ap.add_argument("dest", help="the folder to write, e.g. weights/ddamfn")
    ap.add_argument("--storage", default="float16", choices=STORAGE_DTYPES)
    ap.add_argument("--branch-refs", default="", help="fusion: branch_a=../ddamfn,branch_b=../resnet_dda")
    ap.add_argument("--ferplus", default=str(dataset_root("ferplus")),
                    help="FER+ root (FER2013Valid/ inside; default: $FER_DATA/ferplus)")
    ap.add_argument("--fer2013", default=str(dataset_root("fer2013")),
                    help="FER2013 class folders (val/ inside; default: $FER_DATA/fer2013)")
    ap.add_argument("--run-dir", default=None, help="the run whose curves.png to copy (default: SOURCE/..)")
    ap.add_argument("--fer-crop", action="store_true",
                    help="stamp the project's fitted crop spec for FER-style images (fer_core.preprocess.FER_CROP)")
    ap.add_argument("--no-through-detector", dest="through_detector", action="store_false",
                    help="skip the accuracy through the detector on FER+ valid (minutes on a CPU)")
    a = ap.parse_args(argv)
    return export(a.source, a.dest, storage=a.storage, branch_refs=_refs(a.branch_refs),
                  data_roots={"ferplus": a.ferplus, "fer2013": a.fer2013}, run_dir=a.run_dir, fer_crop=a.fer_crop,
                  through_detector=a.through_detector)


def cli() -> int:
    """The console command: ``main`` without its returned figures (they are printed and written)."""
    main()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
