"""Import the official DDAMFN ``.pth`` checkpoints into fer_core's safetensors + config format.

The released files are pickles; they are read here only, with ``torch.load(weights_only=True)`` (tensors and
plain containers, no code), never at run time. Accepted: a plain state dict, one nested under ``state_dict`` /
``model_state_dict`` / ``model`` / ``net``, and DataParallel's ``module.`` prefix. Tensors the reference declares
but never uses are dropped (each mix block's ``conv_dw.bn`` / ``conv_dw.prelu``, each head's ``CoordAtt.Linear``,
the top-level ``bn``); every other key must match our DDAMFN exactly. The classifier's rows are reordered from
the checkpoint's class order (by default the official one: Neutral, Happy, Sad, Surprise, Fear, Disgust, Angry
[, Contempt]) into the canonical order.

    python -m fer_core.convert rafdb_epoch21_acc0.897_bacc0.8275.pth weights/ddamfn_rafdb --dataset RAF-DB
"""
from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

import torch

from .labels import CANONICAL, LabelSet, get_label_set
from .models import create_model
from .preprocess import FER_CROP
from .weights import build_config, save_pretrained, sha256_file

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")
UNUSED = (re.compile(r"\.conv_dw\.(bn|prelu)\."), re.compile(r"^cat_head\d+\.CoordAtt\.Linear\."), re.compile(r"^bn\."))


def official_state_dict(obj) -> dict:
    """Unwrap a loaded checkpoint into a flat ``{name: tensor}`` with the reference's names."""
    for _ in range(3):
        if isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
            key = next((k for k in NESTED_KEYS if k in obj), None)
            if key is None:
                raise ValueError(f"no state dict found; top-level keys: {sorted(obj)[:10]}")
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"expected a state dict, got {type(obj).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items() if torch.is_tensor(v)}


def convert_state_dict(state: dict, src_labels) -> tuple[torch.nn.Module, LabelSet]:
    """Build our DDAMFN from an official state dict; returns (model, label set in canonical order)."""
    kept = {k: v for k, v in state.items() if not any(p.search(k) for p in UNUSED)}
    heads = {int(m.group(1)) for k in kept if (m := re.match(r"cat_head(\d+)\.", k))}
    if "fc.weight" not in kept or not heads:
        raise ValueError("not a DDAMFN state dict (no fc.weight or no cat_head<i> tensors)")
    src = get_label_set(src_labels)
    n = kept["fc.weight"].shape[0]
    if n != len(src):
        raise ValueError(f"checkpoint has {n} classes but label order {src.key} has {len(src)}")
    dst = get_label_set([c for c in CANONICAL if c in src.names])
    order = [src.names.index(c) for c in dst.names]  # row i of the new head = row order[i] of the old
    kept["fc.weight"], kept["fc.bias"] = kept["fc.weight"][order], kept["fc.bias"][order]
    model = create_model("ddamfn", num_classes=n, num_heads=max(heads) + 1)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(kept)), sorted(set(kept) - set(own))
    if missing or unexpected:
        raise ValueError(f"key mismatch: missing {missing[:5]} ({len(missing)}), unexpected {unexpected[:5]} "
                         f"({len(unexpected)})")
    model.load_state_dict({k: kept[k].float() if kept[k].is_floating_point() else kept[k] for k in own})
    return model.eval(), dst


def convert_checkpoint(pth, out_dir, src_labels=None, dataset: str = "", storage: str = "float32") -> Path:
    obj = torch.load(pth, map_location="cpu", weights_only=True)
    state = official_state_dict(obj)
    n = state["fc.weight"].shape[0] if "fc.weight" in state else 7
    src_labels = src_labels or ("ddamfn_official8" if n == 8 else "ddamfn_official7")
    model, labels = convert_state_dict(state, src_labels)
    # the official checkpoints read 112x112 RGB faces (RAF-DB's aligned crops, resized): their crop keeps that
    # size and colour, not FER+'s 48 px grayscale
    crop = replace(FER_CROP, size=112, grayscale=False)
    config = build_config(model, label_set=labels, input_size=(3, 112, 112), grayscale=False, crop=crop.to_config(),
                          provenance={"source": "official DDAMFN checkpoint (converted)",
                                      "init": "trained by the DDAMFN authors (their backbone: MS-Celeb-1M "
                                              "face-recognition pretraining); converted by fer_core.convert",
                                      "pretrained_backbone": "MS-Celeb-1M face recognition", "file": Path(pth).name,
                                      "file_sha256": sha256_file(pth), "dataset": dataset,
                                      "source_label_order": list(get_label_set(src_labels).names)})
    return save_pretrained(model, out_dir, config, storage=storage)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--labels", default=None, help="the checkpoint's class order: a label-set key or a comma list")
    ap.add_argument("--dataset", default="")
    ap.add_argument("--storage", default="float32", choices=("float32", "float16", "int8"))
    a = ap.parse_args(argv)
    labels = a.labels.split(",") if a.labels and "," in a.labels else a.labels
    print(convert_checkpoint(a.checkpoint, a.out_dir, labels, a.dataset, a.storage))


if __name__ == "__main__":
    main()
