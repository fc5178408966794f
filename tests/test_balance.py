"""The balanced reading (post-hoc logit adjustment, fer_core/balance.py): its strength chosen as documented, and
served by the Analyzer (probabilities, the label shown, the Grad-CAM target) and scored by evaluation alike."""
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import HOPPER

MODELS = ("ddamfn", "resnet_dda", "fusion")


def test_the_strength_is_the_most_balanced_within_the_accuracy_allowed():
    from fer_core.balance import class_prior, fit_tau

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


@pytest.fixture(scope="module")
def balanced_weights(test_weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("balanced")
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
