"""Model cards (Hugging Face Hub README format) rendered from a weights folder's config.json.

The card says what the weights are (architecture, input, preprocessing), how they were made (data, protocol,
command, seed, commit, epochs, device, wall time), how good the stored form is (accuracy, balanced accuracy, ECE
and per-class recall on each evaluation recorded in ``config["metrics"]``) and where not to trust them.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .pretrained import PRETRAINED
from .weights import CONFIG_FILE, WEIGHTS_FILE, read_config

LICENSE_NOTES = {
    "ferplus": "FER+ labels: Microsoft, MIT licence; FER2013 pixels: ICML 2013 challenge, research use only",
    "fer2013": "FER2013 (ICML 2013 representation-learning challenge): research use only",
}
EVALUATION_TITLES = {
    "ferplus_valid": "FER+ valid, majority label (ties, unknown and not-a-face dropped)",
    "fer2013_val": "FER2013 val, 7 classes matched by name (no contempt)",
    "ferplus_valid_balanced": "FER+ valid, balanced setting (rare classes named more often)",
    "fer2013_val_balanced": "FER2013 val, balanced setting",
    "ferplus_valid_late_fusion": ("FER+ valid, late fusion of the branches (the mean of their probabilities: "
                                  "the baseline)"),
    "fer2013_val_late_fusion": "FER2013 val, late fusion of the branches (the baseline)",
    "validation": "selection split, float32 (the trainer's own figure)",
}
# The data caches the recorded commands read: derived from the datasets (research use only), never shipped
DATA_CACHES = {
    ".data/ferplus.npz.xz": "python train_scripts/prepare_data.py ferplus:FERPLUS_ROOT --splits train,valid "
                            "--out .data/ferplus.npz.xz",
    ".data/ferplus_prob.npz.xz": "python train_scripts/prepare_data.py ferplus:FERPLUS_ROOT --splits train "
                                 "--protocol probability --out .data/ferplus_prob.npz.xz",
}
FROM_SCRATCH = ("Trained from scratch: no ImageNet or face-recognition pre-training was available, which costs several "
                "points against the published numbers of the same architectures.")
LIMITS = [
    "Trained on FER+: 48x48 grayscale crops of mostly frontal faces from web images; photos unlike these (profile "
    "views, occlusion, low light, children, very different demographics) are read less reliably.",
    "FER+ labels are the majority of 10 annotators; on many faces they disagree, so even a perfect model would not "
    "reach 100%. Rare classes (disgust, fear, contempt: under 3% of the training set) have low recall.",
    "An expression is not an emotion: do not use these predictions for decisions about people (hiring, policing, "
    "health, education, security).",
]


def _pct(v, digits: int = 2) -> str:
    return f"{100 * v:.{digits}f}%" if isinstance(v, (int, float)) else "-"


def _fmt_seconds(s) -> str:
    if not isinstance(s, (int, float)):
        return str(s)
    h, m = divmod(int(round(s)) // 60, 60)
    return f"{s:,.0f} s ({h} h {m:02d} min)"


def balanced_cost(config: dict, key: str = "ferplus_valid", digits: int = 1) -> str:
    """What the balanced setting gives and costs on evaluation ``key``, against the accurate reading: accuracy,
    balanced accuracy, contempt and disgust recall ('' when the config records no such evaluation)."""
    metrics = config.get("metrics", {})
    acc, bal = metrics.get(key), metrics.get(f"{key}_balanced")
    if not (isinstance(acc, dict) and isinstance(bal, dict)):
        return ""
    parts = [f"accuracy {_pct(bal['accuracy'], digits)} (most accurate: {_pct(acc['accuracy'], digits)})",
             f"balanced accuracy {_pct(bal.get('balanced_accuracy'), digits)} "
             f"({_pct(acc.get('balanced_accuracy'), digits)})"]
    for name in ("contempt", "disgust"):
        if name in bal.get("recall", {}):
            parts.append(f"{name} recall {_pct(bal['recall'][name], 0)} ({_pct(acc.get('recall', {}).get(name), 0)})")
    return ", ".join(parts)


def evaluations(config: dict) -> dict[str, dict]:
    """The evaluations a config records (``metrics`` entries that hold an accuracy), shipped form first."""
    metrics = config.get("metrics", {})
    found = {k: v for k, v in metrics.items()
             if isinstance(v, dict) and "accuracy" in v and not k.endswith("_through_detector")}
    training = metrics.get("training", {})
    if isinstance(training, dict) and "validation" in training:
        found.setdefault("validation", training["validation"])
    return found


def limits(provenance: dict) -> list[str]:
    """The card's limits; weights with a pretrained backbone (``provenance["pretrained_backbone"]``) are not
    from scratch."""
    if provenance.get("pretrained_backbone"):
        return list(LIMITS)
    return LIMITS[:1] + [FROM_SCRATCH] + LIMITS[1:]


def total_wall_time(prov: dict):
    """The run's wall time to its exported epoch plus, for a warm start, that of the run it began from (None
    when either is unrecorded)."""
    before = prov.get("init_provenance", {}).get("provenance", {})
    if "wall_time_s" not in prov or (prov.get("init_provenance") and "wall_time_s" not in before):
        return None
    return prov["wall_time_s"] + before.get("wall_time_s", 0)


def _warm_start_lines(prov: dict) -> list[str]:
    """The run a warm start began from (``provenance["init_provenance"]``), and the CPU time of both together."""
    init = prov.get("init_provenance")
    if not init:
        return []
    before = init.get("provenance", {})
    sha = init.get("files", {}).get("model.safetensors", {}).get("sha256", "")
    lines = [f"- warm start from `{init.get('weights')}`" + (f" (model.safetensors sha256 `{sha[:12]}...`)" if sha else "")
             + ", itself made by:"]
    for key in ("command", "commit", "seed", "epochs", "epochs_completed", "best_epoch"):
        if key in before:
            lines.append(f"  - {key.replace('_', ' ')}: `{before[key]}`")
    if init.get("selection_accuracy") is not None:
        lines.append(f"  - selection split: accuracy {_pct(init['selection_accuracy'])}, balanced "
                     f"{_pct(init.get('selection_balanced_accuracy'))}")
    if "wall_time_s" in before and total_wall_time(prov) is not None:
        lines.append(f"  - wall time to its exported epoch: {_fmt_seconds(before['wall_time_s'])}; with this run's: "
                     f"{_fmt_seconds(total_wall_time(prov))} in all")
    return lines


def render_model_card(config: dict, repo_id: str = "", images=()) -> str:
    """The model card (README.md) of a weights folder, from its config.json: front matter the Hub reads, the
    architecture and input, how it was trained, the measured results, the pictures and the limits."""
    lines = (_front_matter(config, repo_id) + _architecture_lines(config) + _training_lines(config)
             + _results_lines(config))
    for img in images:
        lines += ["", f"![{img}]({img})"]
    lines += ["", "## Limits", ""] + [f"- {text}" for text in limits(config.get("provenance", {}))] + [""]
    return "\n".join(lines)


def _dataset_name(config: dict) -> str:
    return config.get("provenance", {}).get("dataset", "unknown").removeprefix("cache:").split(".")[0]


def _front_matter(config: dict, repo_id: str) -> list[str]:
    """The metadata the Hub reads (its model-card spec, hub-docs modelcard.md): licence, task, tags, the data
    (FER+ labels on FER2013's pixels) and a model-index of the measured results, which the Hub shows."""
    meta = {"library_name": "fer_core", "license": "mit", "pipeline_tag": "image-classification",
            "tags": ["facial-expression-recognition", config["architecture"]]}
    if _dataset_name(config).startswith("ferplus"):
        meta["datasets"] = ["ferplus", "fer2013"]
    results = model_index_results(config)
    if results:
        known = next((e.repo_name for e in PRETRAINED.values() if e.architecture == config["architecture"]), None)
        name = repo_id.split("/")[-1] if repo_id else known or f"{config['architecture']}-{_dataset_name(config)}"
        meta["model-index"] = [{"name": name, "results": results}]
    return ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
            f"# {config['architecture']} ({_dataset_name(config)})" + (f" — `{repo_id}`" if repo_id else ""), "",
            f"Facial-expression recognition, {config['num_classes']} classes: " + ", ".join(config["label_names"])
            + ".", ""]


INDEXED = {  # the evaluations a card's model-index reports: metrics key -> (dataset id, its name, split)
    "ferplus_valid": ("ferplus", "FER+ (majority label)", "validation"),
    "ferplus_valid_balanced": ("ferplus", "FER+ (majority label), balanced setting", "validation"),
    "fer2013_val": ("fer2013", "FER2013 (7 classes)", "validation"),
    "fer2013_val_balanced": ("fer2013", "FER2013 (7 classes), balanced setting", "validation"),
}


def model_index_results(config: dict) -> list[dict]:
    """The ``model-index`` results of a config's recorded evaluations (:data:`INDEXED`), in percent."""
    metrics, results = config.get("metrics", {}), []
    for key, (dataset, name, split) in INDEXED.items():
        ev = metrics.get(key)
        if not isinstance(ev, dict) or "accuracy" not in ev:
            continue
        values = [{"type": "accuracy", "value": round(100 * ev["accuracy"], 2), "name": "Accuracy"}]
        if isinstance(ev.get("balanced_accuracy"), (int, float)):
            values.append({"type": "balanced_accuracy", "value": round(100 * ev["balanced_accuracy"], 2),
                           "name": "Balanced accuracy (mean recall over classes)"})
        results.append({"task": {"type": "image-classification", "name": "Facial expression recognition"},
                        "dataset": {"type": dataset, "name": name, "split": split}, "metrics": values})
    return results


def _architecture_lines(config: dict) -> list[str]:
    size = config["input_size"]
    return [
        "## Architecture and input",
        f"- `{config['architecture']}` with `{json.dumps(config.get('model_args', {}))}`",
        f"- input {size[1]}x{size[2]}, {'grayscale replicated to 3 channels' if config.get('grayscale') else 'colour'},"
        f" mean {config['mean']}, std {config['std']}",
        f"- face crop: {json.dumps(config.get('crop', {}))}",
        f"- temperature {config.get('temperature', 1.0):.3f} (fitted on the selection split); test-time flip: "
        f"{config.get('tta_flip', False)}",
        *([f"- balanced setting: logit adjustment with strength tau = {config['balanced']['tau']} against the "
           f"training class frequencies, chosen on {config['balanced'].get('chosen_on', 'the selection split')} "
           f"(the most balanced accuracy there with at most {_pct(config['balanced'].get('max_accuracy_loss'), 1)} "
           "of accuracy lost)" + (f"; what it costs on FER+ valid: {balanced_cost(config)}" if balanced_cost(config)
                                   else "")]
          if config.get("balanced") else []),
        ("- outside Python: `python -m fer_core.runtime WEIGHTS_FOLDER` exports each branch to ONNX; the fusion's "
         "own head (0.3 M parameters) runs on their outputs in torch" if config["architecture"] == "fusion" else
         "- outside Python: `python -m fer_core.runtime WEIGHTS_FOLDER` exports it to ONNX (opset 17, dynamic "
         "batch, BatchNorm folded; the input as above, outputs: logits before the temperature, pooled features)"),
        f"- stored as {config.get('storage', 'float32')}"
        + (f"; branches by reference: {', '.join(r['weights'] for r in config['branch_refs'].values())}"
           if config.get("branch_refs") else ""),
        "",
    ]


def _training_lines(config: dict) -> list[str]:
    prov = config.get("provenance", {})
    lines = ["## Data and training", f"- initialisation: {prov.get('init', 'from scratch (no pretrained backbone)')}"]
    for key in ("dataset", "protocol", "train_split", "selection_split", "selection_protocol", "seed", "epochs",
                "epochs_completed", "best_epoch", "device", "precision", "commit", "command", "exported_by", "repair"):
        if key in prov:
            lines.append(f"- {key.replace('_', ' ')}: `{prov[key]}`")
    if prov.get("commit_note"):
        lines.append(f"- about the commit: {prov['commit_note']}")
    if prov.get("distillation"):
        d = prov["distillation"]
        lines.append(f"- distillation: the target is {1 - d['weight']:g} x the labels + {d['weight']:g} x the mean of the "
                     "teachers' calibrated, flip-averaged probabilities (precomputed by `train_scripts/teach.py`); "
                     f"teachers: {', '.join(f'`{t}`' for t in d['teachers'])}"
                     + (f"; the file made by `{d['made_by']}`" if d.get("made_by") else ""))
        if d.get("rebuild"):
            lines.append(f"- the teachers' file is not shipped (it is derived from FER+): the teachers are the weights "
                         f"folders of commit `{d.get('teachers_commit', '?')[:7]}`; rebuild it with `{d['rebuild']}`"
                         + (f" ({d['rebuild_note']})" if d.get("rebuild_note") else ""))
    cited = json.dumps(prov)
    caches = [f"`{cmd}`" for path, cmd in DATA_CACHES.items() if path in cited]
    if caches:
        lines.append("- the data caches these commands read are not shipped (derived from FER+; FERPLUS_ROOT holds "
                     "FER2013Train/, FER2013Valid/ ...): " + "; ".join(caches))
    if "wall_time_s" in prov:
        lines.append(f"- wall time to the exported epoch: {_fmt_seconds(prov['wall_time_s'])}"
                     + (f" (the run so far: {_fmt_seconds(prov['run_wall_time_s'])})"
                        if prov.get("run_wall_time_s", prov["wall_time_s"]) != prov["wall_time_s"] else ""))
    lines += _warm_start_lines(prov)
    if _dataset_name(config) in LICENSE_NOTES:
        lines.append(f"- data licence: {LICENSE_NOTES[_dataset_name(config)]}")
    return lines


def _results_lines(config: dict) -> list[str]:
    evals = evaluations(config)
    lines = ["", f"## Results of the stored form ({config.get('storage', 'float32')})", ""]
    if not evals:
        return lines + ["No metrics recorded."] + _through_detector_lines(config)
    lines += ["| evaluation | images | accuracy | balanced accuracy | ECE |", "|---|---|---|---|---|"]
    for key, ev in evals.items():
        lines.append(f"| {EVALUATION_TITLES.get(key, key)} | {ev.get('n', '-')} | {_pct(ev['accuracy'])} | "
                     f"{_pct(ev.get('balanced_accuracy'))} | {_pct(ev.get('ece'))} |")
    plain = {k: ev["without_flip"] for k, ev in evals.items() if isinstance(ev.get("without_flip"), dict)}
    if plain:
        lines += ["", "Without test-time flip (one forward per face instead of two): " + "; ".join(
            f"{EVALUATION_TITLES.get(k, k).split(',')[0]} {_pct(v.get('accuracy'))} (balanced "
            f"{_pct(v.get('balanced_accuracy'))})" for k, v in plain.items()) + "."]
    lines += ["", "Recall per class:", "", "| class | " + " | ".join(evals) + " |", "|---|" + "---|" * len(evals)]
    for n in config["label_names"]:
        lines.append(f"| {n} | " + " | ".join(_pct(ev.get("recall", {}).get(n)) for ev in evals.values()) + " |")
    return lines + _through_detector_lines(config)


def _through_detector_lines(config: dict) -> list[str]:
    through = config.get("metrics", {}).get("ferplus_valid_through_detector")
    if not through:
        return []
    return ["", f"Through the detector, as the page reads a photo (each FER+ valid crop enlarged "
                f"{through.get('scale', 4):g}x, bicubic, centred on a grey canvas "
                f"{through.get('canvas', 2):g}x its side, found by YuNet and cropped by the spec above): "
                f"{_pct(through['detection_rate'], 1)} of the "
                f"faces found, accuracy **{_pct(through['accuracy'])}** (balanced "
                f"{_pct(through.get('balanced_accuracy'))}; a face not found counts as wrong) against "
                f"{_pct(through.get('crop_accuracy'))} on the crops."]


TABLE_BEGIN, TABLE_END = "<!-- weights-table: begin -->", "<!-- weights-table: end -->"
TABLE_HEADER = ["| model | input | stored | FER+ valid | balanced | ECE | balanced setting (its balanced) | "
                "through the detector (found) | FER2013 val (7) | epochs | CPU wall time to the shipped epoch |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]


def weights_table(weights_dir, link_root: str = "") -> list[str]:
    """The shipped weights in one markdown table (rows from each folder's config.json), linking each model card
    as ``{link_root}{folder}/README.md``. A warm start's epochs and wall time add those of the run it began from."""
    root, rows = Path(weights_dir), list(TABLE_HEADER)
    for entry in dict.fromkeys(PRETRAINED.values()):
        folder = root / entry.local_dir
        config = read_config(folder / CONFIG_FILE)
        prov, metrics = config.get("provenance", {}), config.get("metrics", {})
        epochs, wall = str(prov.get("epochs_completed", "-")), total_wall_time(prov)
        before = prov.get("init_provenance", {}).get("provenance")
        if before:
            epochs = f"{before.get('epochs_completed', '?')} + {epochs}"
        valid, fer2013 = metrics.get("ferplus_valid", {}), metrics.get("fer2013_val", {})
        bal, det = metrics.get("ferplus_valid_balanced", {}), metrics.get("ferplus_valid_through_detector", {})
        size_mb = (folder / WEIGHTS_FILE).stat().st_size / 1e6
        rows.append(f"| [{entry.title or entry.name}]({link_root}{entry.local_dir}/README.md) | "
                    f"{config['input_size'][1]} px | {size_mb:.1f} MB ({config.get('storage', 'float32')}) | "
                    f"**{_pct(valid.get('accuracy'))}** | {_pct(valid.get('balanced_accuracy'))} | "
                    f"{_pct(valid.get('ece'), 1)} | {_pct(bal.get('accuracy'))} "
                    f"({_pct(bal.get('balanced_accuracy'))}) | {_pct(det.get('accuracy'))} "
                    f"({_pct(det.get('detection_rate'), 1)}) | {_pct(fer2013.get('accuracy'))} | "
                    f"{epochs} | {f'{wall / 3600:.1f} h' if wall is not None else '-'} |")
    return rows


def replace_table(text: str, rows: list[str]) -> str:
    """``text`` with the lines between the weights-table markers replaced by ``rows``; a ValueError without both."""
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"no '{TABLE_BEGIN}' ... '{TABLE_END}' block")
    return text[:start + len(TABLE_BEGIN)] + "\n" + "\n".join(rows) + "\n" + text[end:]
