"""Shipping a weight: stored form written, measured on FER+ valid and FER2013 val, card and plots beside it."""
import json

import torch

from fer_core import create_model, load_weights, save_pretrained
from fer_core.labels import FERPLUS
from fer_core.weights import build_config
from fixtures import write_class_folders, write_ferplus

from fer_core.train.commands import export


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
    # a shipped folder exported again (to measure it anew) keeps the trainer's figures as they were, not nested
    again_dest = tmp_path / "weights2" / "ddamfn"
    export.main([str(dest), str(again_dest), "--storage", "float16", "--ferplus", str(ferplus), "--fer2013",
                 str(fer2013), "--no-through-detector"])
    m2 = json.loads((again_dest / "config.json").read_text())["metrics"]
    assert m2["training"] == m["training"] and m2["ferplus_valid"]["accuracy"] == m["ferplus_valid"]["accuracy"]
    assert (again_dest / "model.safetensors").read_bytes() == (dest / "model.safetensors").read_bytes()
    card = (dest / "README.md").read_text()
    for text in ("FER+ valid, majority label", "FER2013 val, 7 classes", "1 h 30 min", "from scratch",
                 "## Limits", "decisions about people", "stored as float16",
                 "![confusion_ferplus_valid.png](confusion_ferplus_valid.png)", "| contempt |",
                 "Without test-time flip (one forward per face instead of two): FER+ valid"):
        assert text in card, text


def test_a_fusion_is_measured_beside_the_late_fusion_of_its_branches(tmp_path):
    """The baseline a fusion must beat, on the same faces: the mean of its branches' calibrated, flip-averaged
    probabilities, each branch read at its own size and temperature; recorded in the config and on the card."""
    from fer_core.data import read_dataset
    from fer_core.preprocess import resolve_data_config
    from fer_core.train.evaluation import predict_logits, score_by_name
    from fixtures import make_weights

    w = make_weights(tmp_path / "w", tta_flip=True)
    ferplus = write_ferplus(tmp_path / "ferplus", n_train=4, n_valid=24)
    dest = w / "fusion_shipped"
    export.main([str(w / "fusion"), str(dest), "--branch-refs", "branch_a=../ddamfn,branch_b=../resnet_dda",
                 "--ferplus", str(ferplus), "--fer2013", str(tmp_path / "none"), "--no-through-detector"])
    m = json.loads((dest / "config.json").read_text())["metrics"]
    late = m["ferplus_valid_late_fusion"]
    assert late["n"] == m["ferplus_valid"]["n"] == 24
    ds = read_dataset("ferplus", ferplus, "valid")
    probs = []
    for name in ("ddamfn", "resnet_dda"):
        branch = load_weights(w / name)
        dc = resolve_data_config(branch)
        assert dc.temperature == 1.3 and dc.tta_flip
        probs.append((predict_logits(branch, torch.from_numpy(ds.images), dc) / dc.temperature).softmax(1))
    want = score_by_name(FERPLUS.names, torch.stack(probs).mean(0).log(), ds)
    assert late["accuracy"] == want["accuracy"] and late["recall"] == {k: v["recall"] for k, v in
                                                                          want["per_class"].items()}
    assert "fer2013_val_late_fusion" not in m  # no data there: nothing measured
    card = (dest / "README.md").read_text()
    assert "| FER+ valid, late fusion of the branches (the mean of their probabilities: the baseline) | 24 |" in card
    # a branch's own export has no such baseline
    export.main([str(w / "ddamfn"), str(w / "ddamfn_shipped"), "--ferplus", str(ferplus), "--fer2013",
                 str(tmp_path / "none"), "--no-through-detector"])
    assert "ferplus_valid_late_fusion" not in json.loads((w / "ddamfn_shipped" / "config.json").read_text())["metrics"]
