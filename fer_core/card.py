"""Model cards (Hugging Face Hub README format) rendered from a weights config."""
from __future__ import annotations

import json

LICENSE_NOTES = {
    "ferplus": "FER+ labels: Microsoft, MIT licence; FER2013 pixels: ICML 2013 challenge, research use only",
    "fer2013": "FER2013 (ICML 2013 representation-learning challenge): research use only",
}


def _pct(v):
    return f"{100 * v:.2f}%" if isinstance(v, (int, float)) else str(v)


def render_model_card(config: dict, repo_id: str = "") -> str:
    prov, metrics = config.get("provenance", {}), config.get("metrics", {})
    dataset = prov.get("dataset", "unknown")
    lines = [
        "---",
        "library_name: fer_core",
        "license: mit",
        "pipeline_tag: image-classification",
        "tags: [facial-expression-recognition, " + config["architecture"] + "]",
        "---",
        "",
        f"# {config['architecture']} ({dataset})" + (f" — `{repo_id}`" if repo_id else ""),
        "",
        f"Facial-expression recognition, {config['num_classes']} classes: " + ", ".join(config["label_names"]) + ".",
        "",
        "## Preprocessing",
        f"- input {config['input_size'][1]}x{config['input_size'][2]}, "
        f"{'grayscale replicated to 3 channels' if config.get('grayscale') else 'colour'}, "
        f"mean {config['mean']}, std {config['std']}",
        f"- face crop: {json.dumps(config.get('crop', {}))}",
        f"- temperature {config.get('temperature', 1.0):.3f}; test-time flip: {config.get('tta_flip', False)}",
        f"- stored as {config.get('storage', 'float32')}",
        "",
        "## Training",
        f"- initialisation: {prov.get('init', 'from scratch (no pretrained backbone)')}",
    ]
    for key in ("command", "dataset", "train_split", "selection_split", "seed", "epochs", "commit", "device", "wall_time_s"):
        if key in prov:
            lines.append(f"- {key}: `{prov[key]}`")
    if dataset in LICENSE_NOTES:
        lines.append(f"- data licence: {LICENSE_NOTES[dataset]}")
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        for k, v in metrics.items():
            if isinstance(v, dict):
                v = ", ".join(f"{kk} {_pct(vv)}" for kk, vv in v.items())
            elif isinstance(v, float) and v <= 1.0:
                v = _pct(v)
            lines.append(f"| {k} | {v} |")
    else:
        lines.append("No metrics recorded.")
    lines.append("")
    return "\n".join(lines)
