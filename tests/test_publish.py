"""Publishing, end to end on the project's Hub stand-in (tests/hub_server.py): the three model repos and the
Space in one command; then, in a fresh cache with the weights moved away, every model loads from the stand-in
with the local copies' logits, and a tampered config.json there is refused by name."""
import dataclasses
import json

import pytest
import torch

from conftest import ROOT
from fer_core import pretrained as registry
from fer_core import sources

MODELS = ("ddamfn", "resnet_dda", "fusion")


def test_dry_run_lists_every_file_with_its_size_and_destination(capsys):
    from fer_core.commands import publish

    assert publish.main(["--org", "my-lab", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for key in MODELS:
        repo = f"my-lab/{registry.PRETRAINED[key].repo_name}"
        for name in ("model.safetensors", "config.json", "README.md"):
            size = (ROOT / "weights" / registry.PRETRAINED[key].local_dir / name).stat().st_size
            assert f"model {repo}/{name}  {size:,d} bytes" in out, (repo, name)
    space = "my-lab/fer-attention-demo"
    for name in ("app.py", "demo/ui.py", "fer_core/predict/analyzer.py", "requirements.txt", "README.md",
                 "weights/resnet_dda/model.safetensors", "weights/yunet/face_detection_yunet.onnx"):
        assert f"space {space}/{name} " in out, name
    assert "tests/" not in out and "train_scripts/" not in out and "dry run: nothing uploaded" in out


@pytest.fixture
def published(hub, tmp_path, monkeypatch, capsys):
    """Slim weights under the three shipped names, pinned, published to the stand-in with the Space."""
    from fer_core.commands import publish

    from fer_core import create_model, save_pretrained
    from fer_core.weights import build_config, sha256_file

    w = tmp_path / "weights"
    torch.manual_seed(0)
    a = create_model("ddamfn", input_size=64).eval()
    b = create_model("resnet18_dda", dda_stages=(4,), dda_width=16, c_mid=16).eval()  # slim: 31 M parameters
    for name, m, size in (("ddamfn", a, 64), ("resnet_dda", b, 80)):
        save_pretrained(m, w / name, build_config(m, label_set="ferplus", input_size=(3, size, size)),
                        storage="float16")
    fusion = create_model("fusion", branch_a=a, branch_b=b, branch_input_sizes=[(64, 64), (80, 80)]).eval()
    monkeypatch.setenv("FER_WEIGHTS_DIR", str(w))  # the branches, by registered name, are found here to save
    save_pretrained(fusion, w / "fusion", build_config(fusion, label_set="ferplus", input_size=(3, 80, 80)),
                    branch_refs={"branch_a": "ddamfn", "branch_b": "resnet_dda"})
    (w / "yunet").mkdir()
    yunet = "weights/yunet/face_detection_yunet.onnx"
    (w / "yunet" / "face_detection_yunet.onnx").write_bytes((ROOT / yunet).read_bytes())
    for key in MODELS:
        monkeypatch.setitem(registry.PRETRAINED, key, dataclasses.replace(
            registry.PRETRAINED[key], sha256=sha256_file(w / key / "model.safetensors"),
            config_sha256=sha256_file(w / key / "config.json")))
    monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FER_WEIGHTS_DIR")
    # the Space takes its weights from the model repos (preload_from_hub): the copy into the Space is the dry run's
    assert publish.main(["--org", "test-org", "--weights-dir", str(w), "--endpoint", hub.url,
                         "--space-weights", "hub"]) == 0
    out = capsys.readouterr().out  # each repo's commit, with the command that pins it
    for key in MODELS:
        assert f"(pin it: python train_scripts/pin.py --revision {key}=" in out, key
    monkeypatch.setenv("FER_HUB_ORG", "test-org")
    return w


def test_publish_then_load_everything_from_the_stand_in(hub, published, tmp_path, monkeypatch):
    from fer_core import load_pretrained, load_weights

    w = published
    for key in MODELS:
        entry = registry.PRETRAINED[key]
        repo = f"test-org/{entry.repo_name}"
        assert hub.repo_types[repo] == "model"
        for name in ("model.safetensors", "config.json", "README.md"):
            assert (repo, entry.revision, name) in hub.files, (repo, name)
    space = "test-org/fer-attention-demo"
    assert hub.repo_types[space] == "space"
    readme = hub.files[(space, "main", "README.md")].decode()
    front = readme.split("---")[1]
    for line in ("sdk: gradio", "app_file: app.py", 'python_version: "3.10"', "suggested_hardware: zero-a10g",
                 "  - test-org/ddamfn-ferplus"):
        assert line in front.splitlines(), line
    assert b"spaces==" in hub.files[(space, "main", "requirements.txt")]
    assert hub.variables[space] == {"FER_HUB_ORG": "test-org"}
    assert f"  - test-org/fusion-ferplus config.json,model.safetensors {registry.PRETRAINED['fusion'].revision}" \
        in front.splitlines()  # preload_from_hub
    assert (space, "main", "app.py") in hub.files
    assert (space, "main", "weights/yunet/face_detection_yunet.onnx") in hub.files
    assert (space, "main", "weights/fusion/model.safetensors") not in hub.files
    assert not any(f.startswith("tests/") for (r, v, f) in hub.files if r == space)
    # a fresh cache, the weights moved away: everything comes from the stand-in, as the local copies
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "fresh-cache"))
    monkeypatch.setattr(sources, "PROJECT_WEIGHTS", tmp_path / "moved-away")
    x = (torch.randn(2, 3, 64, 64), torch.randn(2, 3, 80, 80))
    for key, inp in (("ddamfn", x[0]), ("resnet_dda", x[1]), ("fusion", x)):
        loaded, local = load_pretrained(key), load_weights(w / key)
        with torch.no_grad():
            assert torch.equal(loaded(inp), local(inp)), key
    assert hub.gets("model.safetensors") >= 3


def test_a_tampered_config_on_the_hub_is_refused_by_name(hub, published, tmp_path, monkeypatch):
    from fer_core import WeightsError, load_pretrained

    entry = registry.PRETRAINED["ddamfn"]
    repo = f"test-org/{entry.repo_name}"
    config = json.loads(hub.files[(repo, entry.revision, "config.json")])
    config["label_names"] = config["label_names"][::-1]  # the same tensors, every face named wrongly
    hub.put(repo, entry.revision, "config.json", json.dumps(config).encode())
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "fresh-cache"))
    monkeypatch.setattr(sources, "PROJECT_WEIGHTS", tmp_path / "moved-away")
    with pytest.raises(WeightsError, match=r"config\.json: sha256 .* is not the pinned"):
        load_pretrained("ddamfn")

