"""The shipped weights are served as they were measured: the page's path (the Analyzer) gives the logits and the
accuracy that evaluation gives, and fixed inputs give the stored readings (a golden test, so that a change in
preprocessing cannot pass unnoticed)."""
import json

import numpy as np
import pytest
import torch

from conftest import DATA, needs_data
from make_golden import GOLDEN, readings

FERPLUS = DATA / "ferplus"
pytestmark = needs_data("ferplus")


@pytest.fixture(scope="module")
def shipped():
    from fer_core.predict import Analyzer

    with pytest.MonkeyPatch.context() as mp:  # the shipped copies, never the Hub; undone for the tests after these
        mp.setenv("FER_WEIGHTS_SOURCE", "local")
        yield Analyzer.from_pretrained(detector="yunet")


@pytest.fixture(scope="module")
def valid():
    from fer_core.data import read_dataset

    return read_dataset("ferplus", FERPLUS, "valid")


def test_the_fusion_on_the_page_is_the_fusion_evaluated(shipped, valid):
    """On 64 FER+ valid crops the Analyzer's fused logits (from its branches' passes) equal FusionNet.forward's
    on the transform evaluation uses (each branch fed its own size from the same crop, test-time flip)."""
    from fer_core.preprocess import resolve_data_config
    from fer_core.train.evaluation import predict_logits

    assert shipped.sources == {"fusion": ("ddamfn", "resnet_dda")}  # the branches' passes are reused
    crops = valid.images[:64]
    fused = torch.from_numpy(np.stack([r["fusion"].logits for r in shipped.read(list(crops))]))
    model = shipped.slots["fusion"].model
    ref = predict_logits(model, torch.from_numpy(crops), resolve_data_config(model))
    assert torch.allclose(fused, ref, atol=1e-4), (fused - ref).abs().max()


def test_onnx_reads_the_shipped_weights_as_torch_does(shipped, valid):
    """The page reads through ONNX Runtime: on 64 FER+ valid crops each branch's logits equal torch's to 1e-3."""
    from fer_core.preprocess import resolve_data_config
    from fer_core.train.evaluation import predict_logits

    crops = valid.images[:64]
    results = shipped.read(list(crops))
    for key in ("ddamfn", "resnet_dda"):
        slot = shipped.slots[key]
        assert slot.onnx is not None, shipped.engine_notes
        ref = predict_logits(slot.model, torch.from_numpy(crops), resolve_data_config(slot.model))
        got = torch.from_numpy(np.stack([r[key].logits for r in results]))
        assert (got - ref).abs().max() < 1e-3, key


@pytest.mark.timeout(3600)  # a hang guard: all of FER+ valid twice takes many minutes on a busy 2-core machine
def test_the_page_path_scores_what_evaluate_py_reports(shipped, valid):
    """On all of FER+ valid, each model's accuracy through the Analyzer (the page's path from the crops on) equals
    the figure its config.json and card record, which train_scripts/export.py measured with evaluate.py's
    evaluation, to 0.1 point; evaluate.py itself gives that figure again (run here for DDAMFN: the same function
    serves every model)."""
    from fer_core.train.commands import evaluate

    results = shipped.read(list(valid.images))
    for key, slot in shipped.shown.items():
        pred = [slot.labels[int(np.argmax(r[key].logits))] for r in results]
        ours = float(np.mean([p == valid.label_set.names[t] for p, t in zip(pred, valid.labels)]))
        card = slot.model.pretrained_cfg["metrics"]["ferplus_valid"]["accuracy"]
        assert abs(ours - card) <= 0.001, (key, ours, card)
    rep = evaluate.main(["--model", "ddamfn", "--dataset", "ferplus", "--data-root", str(FERPLUS), "--split", "valid"])
    assert abs(rep["accuracy"] - shipped.slots["ddamfn"].model.pretrained_cfg["metrics"]["ferplus_valid"]["accuracy"]) \
        <= 0.001


def test_golden_readings_of_the_shipped_weights(shipped):
    """Fixed inputs (FER+ valid crops, the example photos through detection and cropping) give the stored top
    labels and probabilities, to 1e-3: regenerate with tests/make_golden.py when the weights change on purpose."""
    from fer_core.pretrained import PRETRAINED

    golden = json.loads(GOLDEN.read_text())
    assert golden["weights"] == {k: PRETRAINED[k].sha256 for k in shipped.shown}, \
        "the shipped weights changed: run tests/make_golden.py and commit tests/golden.json"
    now = readings(shipped)
    for part in ("crops", "photos"):
        assert now[part].keys() == golden[part].keys()
        for name in golden[part]:
            want, got = golden[part][name], now[part][name]
            for w_models, g_models in (zip(want, got) if part == "photos" else [(want, got)]):
                for key, probs in w_models.items():
                    assert next(iter(g_models[key])) == next(iter(probs)), (part, name, key)  # the top label
                    for label, p in probs.items():
                        assert abs(g_models[key][label] - p) <= 1e-3, (part, name, key, label)
            if part == "photos":
                assert len(got) == len(want), name
