"""'About the models': each loaded weight's own record (its config.json), shown as a person needs it: what it
was trained on, how well it does on held-out faces, how long it took, and where not to trust it."""
from __future__ import annotations

import numpy as np

from fer_core.card import EVALUATION_TITLES, FROM_SCRATCH, LIMITS, balanced_cost, evaluations, limits
from fer_core.results import display_name


def _pct(v) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "-"


def _hours(s) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    h, m = divmod(int(round(s / 60)), 60)
    return f"{h} h {m:02d} min"


def about_markdown(models: dict) -> str:
    """One table over the models, then per-class recall, then provenance and limits."""
    if not models:
        return "No models are loaded."
    lines = ["| model | input | trained on | FER+ valid accuracy | balanced accuracy | balanced setting: accuracy "
             "(balanced) | through the detector (faces found) | FER2013 val accuracy | CPU training time | stored as |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    evals = {k: evaluations(m.pretrained_cfg) for k, m in models.items()}
    for key, m in models.items():
        cfg, prov = m.pretrained_cfg, m.pretrained_cfg.get("provenance", {})
        main = evals[key].get("ferplus_valid") or evals[key].get("validation") or {}
        other = evals[key].get("fer2013_val") or {}
        bal = evals[key].get("ferplus_valid_balanced") or {}
        det = cfg.get("metrics", {}).get("ferplus_valid_through_detector") or {}
        data = f"{prov.get('dataset', '-')} ({prov.get('protocol', '-')} labels)"
        time_text = _hours(prov.get("wall_time_s")) + (f" on {prov['device']}" if "device" in prov else "")
        lines.append(f"| {display_name(key)} (`{cfg['architecture']}`) | {cfg['input_size'][1]} px "
                     f"{'grayscale' if cfg.get('grayscale') else 'colour'} | {data} | {_pct(main.get('accuracy'))} | "
                     f"{_pct(main.get('balanced_accuracy'))} | {_pct(bal.get('accuracy'))} "
                     f"({_pct(bal.get('balanced_accuracy'))}) | {_pct(det.get('accuracy'))} "
                     f"({_pct(det.get('detection_rate'))}) | {_pct(other.get('accuracy'))} | {time_text} | "
                     f"{cfg.get('storage', 'float32')} |")
    names = next(iter(models.values())).pretrained_cfg["label_names"]
    lines += ["", "**Recall per class on FER+ valid** (how many faces of each expression the model gets right):", "",
              "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in models:
        rec = (evals[key].get("ferplus_valid") or evals[key].get("validation") or {}).get("recall", {})
        lines.append(f"| {display_name(key)} | " + " | ".join(_pct(rec.get(n)) for n in names) + " |")
    for key in models:  # a fusion beside the baseline it must beat, on the same faces
        late, own = evals[key].get("ferplus_valid_late_fusion"), evals[key].get("ferplus_valid")
        if late and own:
            lines += ["", f"**{display_name(key)} against averaging its branches**: {_pct(own['accuracy'])} on FER+ "
                          f"valid (balanced {_pct(own.get('balanced_accuracy'))}); the mean of the two branches' "
                          f"probabilities (late fusion) {_pct(late['accuracy'])} (balanced "
                          f"{_pct(late.get('balanced_accuracy'))})."]
    costs = [f"- {display_name(k)}: {balanced_cost(m.pretrained_cfg)}" for k, m in models.items()
             if balanced_cost(m.pretrained_cfg)]
    if costs:
        lines += ["", "**What the balanced setting costs on FER+ valid** (its figure, then the most accurate "
                      "reading's in brackets):", "", *costs]
    lines += ["", "Figures are of the weights as stored and served here, on FER+ valid "
              f"({EVALUATION_TITLES['ferplus_valid']}). *Balanced setting*: the reading that names the rare "
              "expressions more often (chosen on a slice of the training set). *Through the detector*: each FER+ "
              "crop placed as a face in a photo, found by YuNet and cropped as this page crops faces; a face not "
              "found counts as wrong. A reading with a top probability under 50%, or of a face under 32 px, is "
              "marked uncertain. Each model's card in `weights/` gives the exact command, commit, seed, epochs "
              "and which split chose what.", "", "**Limits**", ""]
    shown = list(LIMITS)
    if any(FROM_SCRATCH in limits(m.pretrained_cfg.get("provenance", {})) for m in models.values()):
        shown.insert(1, FROM_SCRATCH)
    lines += [f"- {text}" for text in shown]
    return "\n".join(lines)


def confusion_images(models: dict) -> list[tuple[np.ndarray, str]]:
    """(RGB image, caption) of each model's FER+ valid confusion matrix, drawn once from its recorded counts, in
    memory (the page's own cache keeps the images)."""
    import io

    from PIL import Image

    from fer_core.plots import plot_confusion

    out = []
    for key, m in models.items():
        ev = evaluations(m.pretrained_cfg)
        main = ev.get("ferplus_valid") or ev.get("validation")
        if not main or "confusion_matrix" not in main:
            continue
        png = io.BytesIO()
        plot_confusion(np.asarray(main["confusion_matrix"]), main["labels"], png,
                       f"{display_name(key)}: accuracy {main['accuracy']:.3f}")
        png.seek(0)
        with Image.open(png) as im:
            image = np.asarray(im.convert("RGB"))
        out.append((image, f"{display_name(key)}: rows are the true expression; each row sums to 1"))
    return out
