"""Shipping a weight: stored form written, measured on FER+ valid and FER2013 val, card and plots beside it."""
import json
import sys

import torch

from conftest import ROOT
from fer_core import create_model, load_weights, save_pretrained
from fer_core.labels import FERPLUS
from fer_core.weights import build_config
from fixtures import write_class_folders, write_ferplus

sys.path.insert(0, str(ROOT / "train_scripts"))
import export  # noqa: E402


def test_export_measures_the_stored_form_and_writes_a_card(tmp_path):
    torch.manual_seed(0)
    model = create_model("ddamfn", input_size=48).eval()
    prov = {"command": "train_scripts/train.py --model ddamfn", "dataset": "ferplus", "protocol": "majority",
            "seed": 0, "epochs": 3, "wall_time_s": 5400.0, "device": "cpu: test, 1 threads, native bf16: no"}
    metrics = {"validation": {"n": 16, "accuracy": 0.5, "balanced_accuracy": 0.4, "ece": 0.1,
                              "recall": {n: 0.5 for n in FERPLUS.names}}}
    src = save_pretrained(model, tmp_path / "run" / "export",
                          build_config(model, label_set=FERPLUS, input_size=(3, 48, 48), provenance=prov,
                                       metrics=metrics, tta_flip=True))
    ferplus = write_ferplus(tmp_path / "ferplus", n_train=8, n_valid=16)
    fer2013 = tmp_path / "fer2013"
    write_class_folders(fer2013 / "val", ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
                        n_per_class=2)
    dest = tmp_path / "weights" / "ddamfn"
    export.main([str(src), str(dest), "--storage", "float16", "--ferplus", str(ferplus), "--fer2013", str(fer2013)])

    cfg = json.loads((dest / "config.json").read_text())
    assert cfg["storage"] == "float16"
    m = cfg["metrics"]
    assert m["ferplus_valid"]["n"] == 16 and m["fer2013_val"]["n"] == 14
    assert m["fer2013_val"]["classes_only_in_model"] == ["contempt"]
    assert set(m["fer2013_val"]["recall"]) == {"neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                                               "fear"}
    assert m["training"]["validation"]["accuracy"] == 0.5  # the trainer's float32 figure, kept apart
    # the recorded accuracy is that of the stored (float16) weights, recomputed here
    from fer_core.data import read_dataset
    from fer_core.train.evaluation import evaluate_model

    again = evaluate_model(load_weights(dest), read_dataset("ferplus", ferplus, "valid"))
    assert again["accuracy"] == m["ferplus_valid"]["accuracy"] and again["tta_flip"]
    plain = evaluate_model(load_weights(dest), read_dataset("ferplus", ferplus, "valid"), tta_flip=False)
    assert m["ferplus_valid"]["without_flip"]["accuracy"] == plain["accuracy"]
    for png in ("confusion_ferplus_valid.png", "confusion_fer2013_val.png"):
        assert (dest / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (dest / "README.md").read_text()
    for text in ("FER+ valid, majority label", "FER2013 val, 7 classes", "1 h 30 min", "from scratch",
                 "## Limits", "decisions about people", "stored as float16",
                 "![confusion_ferplus_valid.png](confusion_ferplus_valid.png)", "| contempt |",
                 "Without test-time flip (one forward per face instead of two): FER+ valid"):
        assert text in card, text
