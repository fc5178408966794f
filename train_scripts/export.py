"""Ship a trained weight: store it compactly, measure the stored form, plot it, and write its model card.

    python train_scripts/export.py ~/.cache/fer/runs/ddamfn/export weights/ddamfn --storage float16
    python train_scripts/export.py ~/.cache/fer/runs/fusion/export weights/fusion --storage float16 \\
        --branch-refs branch_a=../ddamfn,branch_b=../resnet_dda

Steps: load SOURCE (a weights folder, e.g. a run's export/) -> write DEST in the chosen storage (float16 or
per-channel int8; a fusion refers to its branches' folders instead of copying them) -> load DEST back and
evaluate *that* on FER+ valid (majority protocol, the selection split) and FER2013 val (7 classes, matched by
name) -> record the metrics (and the source's float32 figures) in DEST/config.json -> confusion-matrix PNGs, the
training curves of the run, and a README.md model card.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_core.card import render_model_card  # noqa: E402
from fer_core.data import read_dataset  # noqa: E402
from fer_core.files import write_text_atomic  # noqa: E402
from fer_core.train.evaluation import evaluate_model  # noqa: E402
from fer_core.train.metrics import summarize  # noqa: E402
from fer_core.train.plots import plot_confusion  # noqa: E402
from fer_core.weights import STORAGE_DTYPES, load_weights, read_config, save_pretrained, write_config  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
# (key in config.json metrics, dataset kind, split, its name in the card)
EVALUATIONS = (("ferplus_valid", "ferplus", "valid", "FER+ valid (majority, ties dropped)"),
               ("fer2013_val", "fer2013", "val", "FER2013 val (7 classes)"))


def export(source, dest, *, storage="float16", branch_refs=None, data_roots=None, run_dir=None,
           progress=True) -> dict:
    source, dest = Path(source), Path(dest)
    model = load_weights(source)
    config = dict(model.pretrained_cfg)
    metrics = {"training": config.get("metrics", {})}  # the trainer's own figures (float32, selection split)
    config["metrics"] = {}
    save_pretrained(model, dest, config, storage=storage, branch_refs=branch_refs)
    stored = load_weights(dest)  # what users load: evaluate exactly that
    roots = data_roots or {}
    for key, kind, split, title in EVALUATIONS:
        root = roots.get(kind)
        if root is None or not Path(root).exists():
            print(f"skipping {title}: no data at {root}", flush=True)
            continue
        rep = evaluate_model(stored, read_dataset(kind, root, split), progress=progress)
        metrics[key] = summarize(rep)
        plot_confusion(rep["confusion_matrix"], rep["labels"], dest / f"confusion_{key}.png",
                       f"{config['architecture']} ({storage}) on {title}: acc {rep['accuracy']:.4f}")
        print(f"{title}: accuracy {rep['accuracy']:.4f}, balanced {rep['balanced_accuracy']:.4f}, "
              f"ECE {rep['ece']:.4f} (n={rep['n']})" + (f"; without test-time flip {rep['without_flip']['accuracy']:.4f}"
                                                        if rep["tta_flip"] else ""), flush=True)
    config = read_config(dest / "config.json")
    config["metrics"] = metrics
    write_config(dest, config)
    run_dir = Path(run_dir) if run_dir else source.parent
    if (run_dir / "curves.png").exists():
        shutil.copyfile(run_dir / "curves.png", dest / "curves.png")
    write_text_atomic(dest / "README.md", render_model_card(config, images=sorted(p.name for p in dest.glob("*.png"))))
    load_weights(dest)  # the folder as shipped still loads strictly
    return config


def _refs(text: str) -> dict | None:
    return dict(kv.split("=", 1) for kv in text.split(",")) if text else None


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a weights folder (a run's export/)")
    ap.add_argument("dest", help="the folder to write, e.g. weights/ddamfn")
    ap.add_argument("--storage", default="float16", choices=STORAGE_DTYPES)
    ap.add_argument("--branch-refs", default="", help="fusion: branch_a=../ddamfn,branch_b=../resnet_dda")
    ap.add_argument("--ferplus", default=str(SHARED / "ferplus"), help="FER+ root (FER2013Valid/ inside)")
    ap.add_argument("--fer2013", default=str(SHARED / "fer2013"), help="FER2013 class folders (val/ inside)")
    ap.add_argument("--run-dir", default=None, help="the run whose curves.png to copy (default: SOURCE/..)")
    a = ap.parse_args(argv)
    return export(a.source, a.dest, storage=a.storage, branch_refs=_refs(a.branch_refs),
                  data_roots={"ferplus": a.ferplus, "fer2013": a.fer2013}, run_dir=a.run_dir)


if __name__ == "__main__":
    main()
