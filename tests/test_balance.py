"""The balanced reading (post-hoc logit adjustment, fer_core/balance.py): its strength chosen as documented,
served by the Analyzer (probabilities, the label shown, the Grad-CAM target), scored by evaluation alike, and its
cost measured and stated on the card (fit_balance.py --measure)."""
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import HOPPER

MODELS = ("ddamfn", "resnet_dda", "fusion")


def test_the_strength_is_the_most_balanced_within_the_accuracy_allowed():
    from fer_core.balance import MAX_LOSS, class_prior, fit_tau

    rng = np.random.default_rng(0)
    labels = np.array([0] * 800 + [1] * 150 + [2] * 50)
    prior = class_prior(labels, 3)
    logits = torch.from_numpy(rng.normal(0, 1, (1000, 3))).float()
    logits[np.arange(1000), labels] += 1.5  # right more often than not
    logits += torch.log(torch.tensor(prior, dtype=torch.float32))  # and biased towards the frequent classes
    fit = fit_tau(logits, labels, prior, max_loss=0.02)
    base = fit["tried"][0]
    allowed = [t for t in fit["tried"] if t["accuracy"] >= base["accuracy"] - 0.02]
    assert fit["selection"] == max(allowed, key=lambda t: (t["balanced_accuracy"], -t["tau"]))
    assert fit["tau"] > 0 and fit["selection"]["balanced_accuracy"] > base["balanced_accuracy"]
    assert fit_tau(logits, labels, prior, max_loss=0.0)["selection"]["accuracy"] >= base["accuracy"]
    named = fit_tau(logits, labels, prior, max_loss=0.02, names=["a", "b", "c"])  # each class's recall, as chosen
    pred = (logits - named["tau"] * torch.log(torch.tensor(prior, dtype=torch.float32))).argmax(1).numpy()
    assert named["selection"]["recall"] == {n: float((pred[labels == c] == c).mean()) for c, n in enumerate("abc")}
    assert named["unadjusted"]["recall"]["c"] == float((logits.argmax(1).numpy()[labels == 2] == 2).mean())
    assert named["selection"]["accuracy"] == fit["selection"]["accuracy"] and MAX_LOSS == 0.025


@pytest.fixture(scope="module")
def balanced_weights(test_weights, module_tmp):
    root = module_tmp
    for key in MODELS:
        shutil.copytree(test_weights / key, root / key)
    prior = [0.35, 0.27, 0.12, 0.12, 0.09, 0.007, 0.024, 0.006]
    for key in MODELS:
        cfg = json.loads((root / key / "config.json").read_text())
        cfg["balanced"] = {"tau": 1.0, "prior": prior}
        (root / key / "config.json").write_text(json.dumps(cfg))
    return root, prior


def test_the_analyzer_serves_the_balanced_reading(balanced_weights):
    from fer_core.predict import Analyzer

    root, prior = balanced_weights
    analyzer = Analyzer.from_pretrained({k: root / k for k in MODELS}, detector="yunet", device="cpu",
                                        maps_dtype="float32")  # the same forward with maps as without
    acc = analyzer.analyze(HOPPER).faces[0].models
    bal = analyzer.analyze(HOPPER, setting="balanced", maps=True).faces[0].models
    shift = torch.log(torch.tensor(prior))
    for key in MODELS:
        slot = analyzer.slots[key]
        logits = torch.from_numpy(bal[key].logits)
        assert np.allclose(acc[key].logits, logits)  # the same forward; only the reading differs
        want = (logits / slot.temperature - shift).softmax(0)
        for name, p in bal[key].probs.items():
            assert abs(p - float(want[slot.labels.index(name)])) < 1e-4, (key, name)
        assert bal[key].top == slot.labels[int(want.argmax())]
    # Grad-CAM explains the label shown in that setting
    slot = analyzer.slots["ddamfn"]
    face = analyzer.detect(analyzer.analyze(HOPPER).image).faces[0]
    from fer_core.explain import gradcam_with_details, resize_maps
    from fer_core.faces import crop_face

    x = slot.batch([crop_face(analyzer.analyze(HOPPER).image, face, slot.data.crop)])
    cams, _, _ = gradcam_with_details(slot.model, x, classes=[slot.labels.index(bal["ddamfn"].top)])
    assert np.allclose(bal["ddamfn"].gradcam, resize_maps(torch.from_numpy(cams), 224)[0], atol=1e-4)
    with pytest.raises(ValueError, match="setting must be one of"):
        analyzer.analyze(HOPPER, setting="fair")


def test_evaluation_scores_both_readings_from_the_same_logits(balanced_weights, tmp_path):
    from fer_core.data import read_dataset
    from fer_core.train.evaluation import evaluate_model
    from fer_core.weights import load_weights
    from fixtures import write_ferplus

    root, prior = balanced_weights
    ds = read_dataset("ferplus", write_ferplus(tmp_path / "fp", n_train=8, n_valid=24), "valid")
    model = load_weights(root / "ddamfn")
    rep = evaluate_model(model, ds, settings=("accurate", "balanced"))
    plain = evaluate_model(load_weights(root / "ddamfn"), ds)
    assert rep["accuracy"] == plain["accuracy"] and rep["setting"] == "accurate"
    assert set(rep["balanced"]) >= {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix"}


def test_fit_balance_measures_what_the_setting_costs_and_says_it_on_the_card(balanced_weights, tmp_path):
    """``fit_balance.py --measure``: the balanced setting read once on the data (as export.py reads it), recorded
    beside the accurate figure, which is measured again and must agree, and stated on the card; it refuses to
    leave a recorded evaluation's balanced figures as they were when that evaluation's data is missing."""
    from fer_core.train.commands.fit_balance import measure
    from fer_core.data import read_dataset
    from fer_core.train.evaluation import evaluate_model
    from fer_core.weights import load_weights, read_config, write_config
    from fixtures import write_ferplus

    src, _ = balanced_weights
    folder = tmp_path / "ddamfn"
    shutil.copytree(src / "ddamfn", folder)
    data = write_ferplus(tmp_path / "fp", n_train=8, n_valid=40)
    rep = evaluate_model(load_weights(folder), read_dataset("ferplus", data, "valid"), settings=("accurate", "balanced"))
    config = read_config(folder / "config.json")
    config["metrics"] = {"ferplus_valid": {"accuracy": rep["accuracy"], "balanced_accuracy": rep["balanced_accuracy"],
                                           "recall": {k: v["recall"] for k, v in rep["per_class"].items()}}}
    write_config(folder, config)
    with pytest.raises(SystemExit, match="no data"):
        measure(folder, {"ferplus": tmp_path / "nowhere"})
    out = measure(folder, {"ferplus": data, "fer2013": tmp_path / "nowhere"})  # FER2013 val was never recorded
    assert set(out["metrics"]) == {"ferplus_valid", "ferplus_valid_balanced"}
    bal = read_config(folder / "config.json")["metrics"]["ferplus_valid_balanced"]
    assert bal["accuracy"] == rep["balanced"]["accuracy"] and bal["n"] == rep["balanced"]["n"]
    assert bal["balanced_accuracy"] == rep["balanced"]["balanced_accuracy"]
    card = (folder / "README.md").read_text()
    assert "what it costs on FER+ valid: accuracy" in card and "contempt recall" in card
    config["metrics"]["ferplus_valid"]["accuracy"] = rep["accuracy"] - 0.1  # a figure this weight does not read
    write_config(folder, config)
    with pytest.raises(SystemExit, match="the accurate reading reads"):
        measure(folder, {"ferplus": data})
