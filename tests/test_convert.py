"""Official DDAMFN checkpoint -> safetensors + config (its own 112 px RGB crop, its card)."""

import pytest
import torch

from fer_core import create_model, load_weights
from fer_core.convert import convert_checkpoint
from fer_core.labels import DDAMFN_OFFICIAL7, index_map
from fer_core.weights import read_config


def official_state_dict(model):
    """Our DDAMFN's tensors under the official names, plus the tensors the reference holds but never uses."""
    sd = dict(model.state_dict())
    for name, module in model.named_modules():
        if name.endswith(".conv_dw"):
            g = sum(module.splits)
            sd.update({f"{name}.bn.weight": torch.ones(g), f"{name}.bn.bias": torch.zeros(g),
                       f"{name}.bn.running_mean": torch.zeros(g), f"{name}.bn.running_var": torch.ones(g),
                       f"{name}.bn.num_batches_tracked": torch.tensor(0), f"{name}.prelu.weight": torch.full((g,), 0.25)})
    for i in range(model.num_heads):
        p = f"cat_head{i}.CoordAtt.Linear"
        sd.update({f"{p}.conv.weight": torch.randn(512, 1, 7, 7), f"{p}.bn.weight": torch.ones(512),
                   f"{p}.bn.bias": torch.zeros(512), f"{p}.bn.running_mean": torch.zeros(512),
                   f"{p}.bn.running_var": torch.ones(512), f"{p}.bn.num_batches_tracked": torch.tensor(0)})
    n = model.num_classes
    sd.update({"bn.weight": torch.ones(n), "bn.bias": torch.zeros(n), "bn.running_mean": torch.zeros(n),
               "bn.running_var": torch.ones(n), "bn.num_batches_tracked": torch.tensor(0)})
    return sd


@pytest.mark.parametrize("wrap", ["plain", "nested_module"])
def test_convert_official_checkpoint(wrap, tmp_path):
    torch.manual_seed(0)
    ref = create_model("ddamfn", num_classes=7).eval()
    # give BN statistics non-trivial values so a wrong mapping would show
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = official_state_dict(ref)
    obj = sd if wrap == "plain" else {"epoch": 21, "model_state_dict": {"module." + k: v for k, v in sd.items()}}
    pth = tmp_path / "rafdb_epoch21.pth"
    torch.save(obj, pth)
    out = convert_checkpoint(pth, tmp_path / "converted", dataset="RAF-DB")
    model = load_weights(out)
    names = model.pretrained_cfg["label_names"]
    assert names == ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        official, ours = ref(x), model(x)
    # the same scores, re-ordered by name from the official order into ours
    for i, j in enumerate(index_map(DDAMFN_OFFICIAL7, names)):
        assert torch.allclose(official[:, i], ours[:, j], atol=1e-5)
    assert model.pretrained_cfg["provenance"]["source_label_order"] == list(DDAMFN_OFFICIAL7.names)


def test_convert_refuses_a_foreign_state_dict(tmp_path):
    sd = official_state_dict(create_model("ddamfn", num_classes=7))
    sd["features.9.conv.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "x.pth")
    with pytest.raises(ValueError, match=r"unexpected \['features\.9\.conv\.weight'\]"):
        convert_checkpoint(tmp_path / "x.pth", tmp_path / "out")
    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "y.pth")
    with pytest.raises(ValueError, match="no state dict found"):
        convert_checkpoint(tmp_path / "y.pth", tmp_path / "out")


def test_a_converted_checkpoint_keeps_its_own_crop_and_says_who_trained_it(tmp_path):
    """The official checkpoints read 112 px RGB faces: the converted config keeps that crop (not FER+'s 48 px
    grayscale), and the card credits their authors instead of saying 'from scratch'."""
    from fer_core.card import render_model_card
    from fer_core.preprocess import resolve_data_config

    torch.manual_seed(0)
    pth = tmp_path / "a.pth"
    torch.save(official_state_dict(create_model("ddamfn", num_classes=7)), pth)
    folder = convert_checkpoint(pth, tmp_path / "ddamfn")
    dc = resolve_data_config(load_weights(folder))
    assert dc.input_sizes == (112,) and dc.crop.size == 112 and not dc.crop.grayscale
    card = render_model_card(read_config(folder / "config.json"))
    assert card.startswith("---\n") and "trained by the DDAMFN authors" in card and "from scratch" not in card
