"""Saving and strict loading of weights folders."""
import json
import os
import warnings

import pytest
import torch

from fer_core import WeightsError, create_model, load_pretrained, load_weights, save_pretrained
from fer_core.labels import FERPLUS
from fer_core.weights import build_config, read_config
from test_models import TINY


def _save(model, path, **kw):
    return save_pretrained(model, path, build_config(model, label_set=FERPLUS), **kw)


@pytest.mark.parametrize("name", sorted(TINY))
def test_round_trip_identical_logits(name, tmp_path):
    torch.manual_seed(0)
    kwargs, size = TINY[name]
    model = create_model(name, **kwargs).eval()
    x = torch.randn(2, 3, size, size)
    out = _save(model, tmp_path / name)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_pretrained(out)
    assert not loaded.training and loaded.pretrained_cfg["label_names"] == list(FERPLUS.names)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_the_same_tensors_make_the_same_file(tmp_path):
    """The file's sha256 (what the pins hold) depends on the tensors alone: saved again, elsewhere, in float16 or
    from its own loaded copy, the bytes are the same."""
    torch.manual_seed(0)
    model = create_model("ddamfn", input_size=48).eval()
    files = [(_save(model, tmp_path / f"{i}", storage="float16") / "model.safetensors").read_bytes() for i in range(4)]
    again = _save(load_weights(tmp_path / "0"), tmp_path / "loaded", storage="float16")
    assert all(f == files[0] for f in files[1:]) and (again / "model.safetensors").read_bytes() == files[0]


@pytest.mark.parametrize("storage,tol", [("float16", 2e-2), ("int8", 0.25)])
def test_reduced_storage_loads_as_float(storage, tol, tmp_path):
    torch.manual_seed(0)
    model = create_model("ddamfn").eval()
    x = torch.randn(2, 3, 112, 112)
    full = _save(model, tmp_path / "fp32")
    small = _save(model, tmp_path / storage, storage=storage)
    ratio = (small / "model.safetensors").stat().st_size / (full / "model.safetensors").stat().st_size
    assert ratio < (0.55 if storage == "float16" else 0.35)  # small tensors stay float32
    loaded = load_weights(small)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        ref, got = model(x), loaded(x)
    assert (ref - got).abs().max() < tol * ref.abs().max()


def test_config_records_what_the_loader_needs(tmp_path):
    model = create_model("ddamfn", num_classes=8)
    cfg = build_config(model, label_set="ferplus", temperature=1.7, provenance={"seed": 3}, metrics={"accuracy": 0.5})
    save_pretrained(model, tmp_path, cfg, storage="float16")
    saved = read_config(tmp_path / "config.json")
    assert saved["architecture"] == "ddamfn" and saved["model_args"] == {"num_classes": 8}
    assert saved["input_size"] == [3, 112, 112] and saved["storage"] == "float16"
    assert saved["temperature"] == 1.7 and saved["provenance"] == {"seed": 3}
    assert len(saved["files"]["model.safetensors"]["sha256"]) == 64
    assert load_weights(tmp_path / "model.safetensors").temperature == 1.7
    for name in ("model.safetensors", "config.json"):  # readable by others, like any file put in place
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_label_count_must_match_model():
    with pytest.raises(ValueError, match="8 classes"):
        build_config(create_model("ddamfn", num_classes=8), label_set="fer2013")


@pytest.fixture
def saved(tmp_path):
    model = create_model("ddamfn", num_classes=8)
    return _save(model, tmp_path / "w")


def _rewrite_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def test_corrupted_file_is_refused(saved):
    p = saved / "model.safetensors"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"model\.safetensors.*sha256.*does not match"):
        load_weights(saved)


def test_truncated_file_is_refused_even_with_a_matching_hash(saved):
    from fer_core.weights import sha256_file

    p = saved / "model.safetensors"
    p.write_bytes(p.read_bytes()[:5000])
    _rewrite_config(saved, files={"model.safetensors": {"sha256": sha256_file(p)}})
    with pytest.raises(WeightsError, match=r"model\.safetensors: cannot read safetensors"):
        load_weights(saved)


def test_weights_holding_nan_or_inf_are_refused_on_save_and_load(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    from fer_core.weights import sha256_file

    model = create_model("ddamfn", num_classes=8)
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")
    with pytest.raises(WeightsError, match=r"1 tensors hold NaN or infinite values: fc\.weight \(1\)"):
        _save(model, tmp_path / "nan")
    assert not (tmp_path / "nan" / "model.safetensors").exists()
    big = create_model("ddamfn", num_classes=8)
    with torch.no_grad():
        next(p for p in big.parameters() if p.numel() > 10_000).fill_(1e6)  # beyond float16's 65,504
    _save(big, tmp_path / "fp32")  # float32 holds it
    with pytest.raises(WeightsError, match="as float16: values beyond its range"):
        _save(big, tmp_path / "fp16", storage="float16")
    p = saved / "model.safetensors"  # a file that says its sha256 correctly and holds an inf
    state = load_file(str(p))
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key].clone().fill_(float("inf"))
    save_file(state, str(p))
    _rewrite_config(saved, files={"model.safetensors": {"sha256": sha256_file(p)}})
    with pytest.raises(WeightsError, match=f"model\\.safetensors: 1 tensors hold NaN or infinite values: {key}"):
        load_weights(saved)


def test_wrong_config_is_refused(saved):
    _rewrite_config(saved, model_args={"num_classes": 8, "num_heads": 3})
    with pytest.raises(WeightsError, match=r"does not fit ddamfn.*missing tensors.*cat_head2"):
        load_weights(saved)


def test_wrong_shapes_are_refused(saved):
    _rewrite_config(saved, model_args={"num_classes": 7}, label_names=list(FERPLUS.names[:7]))
    with pytest.raises(WeightsError, match=r"shape mismatches.*fc\.weight: file \(8, 512\) vs model \(7, 512\)"):
        load_weights(saved)


def test_unknown_architecture_and_bad_json_are_refused(saved):
    _rewrite_config(saved, architecture="resnet99_dda")
    with pytest.raises(WeightsError, match=r"config\.json: unknown model 'resnet99_dda'"):
        load_weights(saved)
    (saved / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match=r"config\.json: not valid JSON"):
        load_weights(saved)


def test_unknown_name_and_missing_folder(offline_env, tmp_path):
    with pytest.raises(WeightsError, match="neither an existing path nor a registered weight name"):
        load_pretrained("no-such-model")
    with pytest.raises(WeightsError, match="no such file"):
        load_weights(tmp_path / "model.safetensors")


def test_fusion_can_reference_its_branches(tmp_path):
    torch.manual_seed(0)
    a = create_model("ddamfn").eval()
    b = create_model("resnet18_dda", dda_stages=(4,)).eval()
    _save(a, tmp_path / "ddamfn")
    _save(b, tmp_path / "resnet_dda")
    fusion = create_model("fusion", branch_a=a, branch_b=b, branch_input_sizes=[(112, 112), (64, 64)]).eval()
    with torch.no_grad():
        fusion.head.weight.normal_()
    out = save_pretrained(fusion, tmp_path / "fusion", build_config(fusion, label_set=FERPLUS),
                          branch_refs={"branch_a": "../ddamfn", "branch_b": "../resnet_dda"})
    size = (out / "model.safetensors").stat().st_size
    assert size < 2_000_000  # the branches are not stored again
    loaded = load_weights(out)
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(fusion(x), loaded(x))
    # a branch that changed after the fusion was saved is refused
    _save(create_model("ddamfn"), tmp_path / "ddamfn")
    with pytest.raises(WeightsError, match="not the pinned"):
        load_weights(out)


def test_create_model_pretrained_by_weight_or_architecture_name(offline_env, unpinned):
    from fixtures import make_weights

    make_weights(offline_env / "weights")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FER_WEIGHTS_DIR's folder is served as is: no Hub, no fallback warning
        by_name = create_model("resnet_dda", pretrained=True)
        by_arch = create_model("resnet18_dda", pretrained=True, num_classes=8, dda_stages=[3, 4])
        assert by_name.pretrained_cfg["files"] == by_arch.pretrained_cfg["files"] and not by_arch.training
        with pytest.raises(ValueError, match="num_classes=7"):
            create_model("ddamfn", pretrained=True, num_classes=7)
    with pytest.raises(KeyError, match="no pretrained weights for 'resnet50_dda'"):
        create_model("resnet50_dda", pretrained=True)


def test_fusion_loaded_beside_its_branches_holds_each_parameter_once(test_weights):
    root = test_weights
    a, b = load_weights(root / "ddamfn"), load_weights(root / "resnet_dda")
    fusion = load_weights(root / "fusion", reuse=[a, b])
    assert fusion.branch_a is a and fusion.branch_b is b
    alone = load_weights(root / "fusion")  # without reuse it loads its own copies, equal to the shared ones
    assert alone.branch_a is not a
    sa, sb = alone.state_dict(), fusion.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    other = create_model("ddamfn").eval()  # a module of the right shape but not those weights is not reused
    assert load_weights(root / "fusion", reuse=[other, b]).branch_a is not other


def test_the_shipped_weights_are_the_pinned_ones_and_load_with_no_network_call(monkeypatch):
    """weights/ holds what fer_core/pretrained.py pins (tensors and config.json; the Hub revision serves the same
    files): online, with nothing set, each loads from weights/ without opening a socket or resolving a name,
    strictly, with the stored form's FER+ valid figures in its config; the fusion holds its branches' own
    modules."""
    import socket

    from fer_core.predict import MODEL_KEYS, Analyzer
    from fer_core.pretrained import PRETRAINED, PROJECT_WEIGHTS
    from fer_core.weights import sha256_file, weights_sha256

    for var in ("HF_HUB_OFFLINE", "FER_WEIGHTS_DIR", "FER_WEIGHTS_SOURCE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network call while loading the shipped weights: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyzer = Analyzer.from_pretrained(detector="yunet")
    assert calls == []
    for key in MODEL_KEYS:
        entry, model = PRETRAINED[key], analyzer.slots[key].model
        assert entry.sha256 and weights_sha256(model) == entry.sha256, key
        assert sha256_file(PROJECT_WEIGHTS / entry.local_dir / "config.json") == entry.config_sha256, key
        cfg = read_config(PROJECT_WEIGHTS / entry.local_dir / "config.json")
        assert cfg["metrics"]["ferplus_valid"]["n"] == 3417 and cfg["storage"] == "float16", key
        assert (PROJECT_WEIGHTS / entry.local_dir / "README.md").read_text().count("## Limits") == 1
    fusion = analyzer.slots["fusion"].model
    assert fusion.branch_a is analyzer.slots["ddamfn"].model and fusion.branch_b is analyzer.slots["resnet_dda"].model


def test_the_docs_weights_tables_are_those_of_the_shipped_weights(tmp_path, capsys):
    """README.md and weights/README.md show the table train_scripts/weights_table.py writes from weights/; a
    changed figure is reported, and --write puts it right."""
    import shutil
    from pathlib import Path

    from conftest import ROOT as root
    from fer_core.commands import weights_table

    assert weights_table.main(["--check"]) == 0, capsys.readouterr().out
    doc = tmp_path / "README.md"
    shutil.copy(root / "README.md", doc)
    text = doc.read_text()
    shipped = json.loads((root / "weights" / "fusion" / "config.json").read_text())
    accuracy = f"**{100 * shipped['metrics']['ferplus_valid']['accuracy']:.2f}%**"
    assert text.count(accuracy) >= 1
    doc.write_text(text.replace(accuracy, "**99.99%**"))
    args = ["--weights-dir", str(root / "weights"), "--docs", str(doc)]
    assert weights_table.main(["--check"] + args) == 1 and "out of date" in capsys.readouterr().out
    assert weights_table.main(["--write"] + args) == 0
    rewritten = doc.read_text()
    assert accuracy in rewritten and "99.99%" not in rewritten
    assert f"]({Path(os.path.relpath(root / 'weights', tmp_path)).as_posix()}/fusion/README.md)" in rewritten


def test_the_shipped_cards_are_their_configs_and_cite_what_can_be_had():
    """Each shipped card is rendered from its config.json as it stands; no recorded commit is '-dirty'; a file the
    recorded commands read that does not ship (the data caches, the distillation teachers' probabilities) is said
    how to rebuild, and the commit named for the teachers holds exactly the teachers the card names; the balanced
    setting's cost on FER+ valid is stated."""
    import re
    import subprocess

    from conftest import ROOT as root
    from fer_core.card import DATA_CACHES, render_model_card
    from fer_core.pretrained import PRETRAINED, PROJECT_WEIGHTS

    for entry in dict.fromkeys(PRETRAINED.values()):
        folder = PROJECT_WEIGHTS / entry.local_dir
        config = read_config(folder / "config.json")
        card = (folder / "README.md").read_text()
        assert card == render_model_card(config, images=sorted(p.name for p in folder.glob("*.png"))), entry.name
        prov = config["provenance"]
        assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"]), (entry.name, prov["commit"])
        for path, command in DATA_CACHES.items():
            assert (path in json.dumps(prov)) == (command in card), (entry.name, path)
        assert "what it costs on FER+ valid: accuracy" in card, entry.name
        d = prov.get("distillation")
        if not d:
            continue
        read = prov["command"].split("--distill ")[1].split()[0]  # the file the training read
        assert d["rebuild"] in card and d["rebuild"].endswith(f"--out {read}"), entry.name
        commit = d["teachers_commit"]
        assert d["rebuild"].startswith(f"git archive {commit[:7]} weights/ddamfn weights/resnet_dda weights/fusion")
        if not (root / ".git").exists():
            continue  # a copy without history (a Space): the commit cannot be read here
        for teacher in d["teachers"]:
            name, sha = re.match(r"(?:.*/)?weights/(\w+)@sha256:([0-9a-f]+)", teacher).groups()
            held = subprocess.run(["git", "-C", str(root), "show", f"{commit}:weights/{name}/config.json"],
                                  capture_output=True, text=True, check=True).stdout
            assert json.loads(held)["files"]["model.safetensors"]["sha256"].startswith(sha), (entry.name, teacher)
