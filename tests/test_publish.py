"""Publishing: ``--out`` writes the Space as it would be uploaded, with no network; publishing runs end to end on
the project's Hub stand-in (tests/hub_server.py), which refuses what the Hub refuses (tests/hub_rules.py): the
three model repos and the Space in one command, large files through the large-file path; then, in a fresh cache
with the weights moved away, every model loads from the stand-in with the local copies' logits, and a tampered
config.json there is refused by name."""
import dataclasses
import json
import socket
import subprocess
import sys

import huggingface_hub
import pytest
import torch
from huggingface_hub import HfApi, constants

from conftest import ROOT
from fer_core import pretrained as registry
from fer_core import sources
from hub_rules import front_matter, model_errors, space_errors

MODELS = ("ddamfn", "resnet_dda", "fusion")
SHAS = {k: f"{i + 1:x}" * 40 for i, k in enumerate(MODELS)}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network call: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_dry_run_lists_every_file_with_its_size_and_destination(capsys, no_network):
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


def test_out_writes_the_space_as_uploaded_with_no_network(tmp_path, no_network):
    """ZeroGPU (the default): Python 3.12, the project's torch, no suggested_hardware (ZeroGPU is none of its
    documented values), the weights copied in; CPU hardware adds pre-requirements.txt with the CPU builds of the
    same torch; with the weights on the Hub each preload entry names its repo's commit."""
    from fer_core.commands import publish

    zero = tmp_path / "zero"
    assert publish.main(["--org", "me", "--out", str(zero)]) == 0
    files = {p.relative_to(zero).as_posix() for p in zero.rglob("*") if p.is_file()}
    assert {"app.py", "demo/runner.py", "fer_core/predict/analyzer.py", "requirements.txt", "README.md",
            "weights/fusion/model.safetensors", "weights/yunet/face_detection_yunet.onnx"} <= files
    assert not [f for f in files if f.startswith(("tests/", "train_scripts/", "bench/", "fer_core/train/",
                                                  "fer_core/commands/")) or "__pycache__" in f]
    # the app's modules import from the folder alone, training and commands absent
    probe = ("import sys; import demo, demo.runner, demo.access, fer_core.predict; "
             "assert demo.__file__.startswith(sys.argv[1]) and fer_core.__file__.startswith(sys.argv[1]); "
             "assert not [m for m in sys.modules if m.startswith(('fer_core.train', 'fer_core.commands'))]")
    r = subprocess.run([sys.executable, "-c", probe, str(zero)], cwd=zero, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "pre-requirements.txt" not in files
    meta = front_matter((zero / "README.md").read_text())
    assert space_errors(meta) == [] and meta["python_version"] == "3.12" and "suggested_hardware" not in meta
    assert meta["sdk"] == "gradio" and meta["models"] == [f"me/{registry.PRETRAINED[k].repo_name}" for k in MODELS]
    reqs = (zero / "requirements.txt").read_text()
    assert (ROOT / "requirements.txt").read_text().strip() in reqs and "spaces==0.51.3" in reqs
    assert (zero / "weights/resnet_dda/model.safetensors").read_bytes() == \
        (ROOT / "weights/resnet_dda/model.safetensors").read_bytes()

    cpu = tmp_path / "cpu"
    revisions = [f"--revision={k}={SHAS[k]}" for k in MODELS]
    assert publish.main(["--org", "me", "--out", str(cpu), "--hardware", "cpu-basic", "--space-weights", "hub",
                         *revisions]) == 0
    meta = front_matter((cpu / "README.md").read_text())
    assert space_errors(meta) == [] and meta["suggested_hardware"] == "cpu-basic"
    assert meta["preload_from_hub"] == [f"me/{registry.PRETRAINED[k].repo_name} config.json,model.safetensors "
                                        f"{SHAS[k]}" for k in MODELS]
    assert (cpu / "pre-requirements.txt").read_text() == (ROOT / "pre-requirements.txt").read_text()
    assert not (cpu / "weights/ddamfn").exists() and (cpu / "weights/yunet").is_dir()


def test_out_refuses_what_would_not_build(tmp_path, no_network, capsys, monkeypatch):
    from fer_core.commands import publish

    monkeypatch.delenv("FER_HUB_ORG", raising=False)

    with pytest.raises(SystemExit):  # ZeroGPU's Pythons are 3.12.12 and 3.10.13; onnxruntime has no 3.10 wheel
        publish.main(["--org", "me", "--out", str(tmp_path / "a"), "--python", "3.10"])
    assert "onnxruntime 1.32 has no wheel for 3.10" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="needs each model repo's commit"):
        publish.main(["--org", "me", "--out", str(tmp_path / "b"), "--space-weights", "hub"])
    with pytest.raises(SystemExit, match="takes a commit sha"):  # a tag moves: the Space would not be pinned
        publish.main(["--org", "me", "--out", str(tmp_path / "c"), "--space-weights", "hub",
                      *[f"--revision={k}={registry.PRETRAINED[k].revision}" for k in MODELS]])
    with pytest.raises(SystemExit):
        publish.main(["--org", "me", "--out", str(tmp_path / "d"), "--space-weights", "hub", "--private"])
    assert "cannot preload private model repos" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        publish.main(["--out", str(tmp_path / "e")])  # whose Space? Not guessed without the network
    assert "--out and --dry-run need the owner" in capsys.readouterr().err


def test_the_stand_in_refuses_what_the_hub_refuses(hub, tmp_path, monkeypatch):
    """An undocumented front-matter key, a YAML float for python_version, a suggested_hardware the reference does
    not list, a preload by tag: refused by the Hub's validator before anything is sent; a file over 10 MiB sent
    inside a commit: refused; a model card whose model-index lacks what the spec requires: refused."""
    monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
    api = HfApi(endpoint=hub.url)
    api.create_repo("me/space", repo_type="space", space_sdk="gradio")
    good = {"title": "t", "sdk": "gradio", "python_version": "3.12", "app_file": "app.py",
            "preload_from_hub": ["me/m config.json " + "a" * 40]}
    bad = [({"hardware": "zero-a10g"}, '"hardware" is not a Space configuration key'),
           ({"suggested_hardware": "zero-a10g"}, '"suggested_hardware" must be'),
           ({"python_version": 3.10}, '"python_version" must be'),
           ({"preload_from_hub": ["me/m config.json v8"]}, "'v8' is not a commit sha"),
           ({"sdk": "streamlit"}, '"sdk" must be')]
    for change, message in bad:
        card = "---\n" + json.dumps(dict(good, **change)) + "\n---\n"
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="me/space",
                            repo_type="space")
    api.upload_file(path_or_fileobj=("---\n" + json.dumps(good) + "\n---\n").encode(), path_in_repo="README.md",
                    repo_id="me/space", repo_type="space")
    big = base64_line({"key": "file", "value": {"path": "big.bin", "encoding": "base64",
                                                  "content": (b"x" * (10 * 2**20 + 1))}})
    r = huggingface_hub.get_session().post(f"{hub.url}/api/spaces/me/space/commit/main", content=big,
                                           headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and "larger than 10 MiB" in r.text
    assert model_errors({"model-index": [{"name": "m", "results": [{"task": {"type": "image-classification"},
                                                                   "dataset": {"type": "ferplus"},
                                                                   "metrics": [{"type": "accuracy"}]}]}]}) == [
        "model-index: dataset.type and dataset.name are required", "model-index: each metric needs a type and a value"]


def base64_line(item: dict) -> bytes:
    import base64

    item["value"]["content"] = base64.b64encode(item["value"]["content"]).decode()
    header = {"key": "header", "value": {"summary": "big", "description": ""}}
    return (json.dumps(header) + "\n" + json.dumps(item) + "\n").encode()


def test_with_hf_xet_large_files_ask_for_xet_storage(hub, tmp_path, monkeypatch):
    """huggingface_hub with hf_xet (installed with it) sends large files to Xet storage: it asks the Hub for a
    Xet write token first. Xet's storage servers speak a content-addressed chunk protocol through hf_xet's Rust
    client, which this stand-in cannot serve (it answers 501): the rest of that path is not followed here; the
    other tests take the LFS path (HF_HUB_DISABLE_XET), which the Hub serves as well."""
    monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    api = HfApi(endpoint=hub.url)
    api.create_repo("me/m")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "weights.bin").write_bytes(b"\1" * (11 * 2**20))
    with pytest.raises(Exception):
        api.upload_folder(repo_id="me/m", folder_path=tmp_path / "up")
    assert any(p.startswith("/api/models/me/m/xet-write-token/") for _, p in hub.log), hub.log
    assert ("me/m", "main", "weights.bin") not in hub.files


@pytest.fixture
def published(hub, tmp_path, monkeypatch, capsys):
    """Slim weights under the three shipped names, pinned, published to the stand-in with the Space (the weights
    preloaded from the model repos), under the token's user (no --org, no FER_HUB_ORG)."""
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
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the LFS path: see the test above
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FER_WEIGHTS_DIR")
    monkeypatch.delenv("FER_HUB_ORG", raising=False)
    assert publish.main(["--weights-dir", str(w), "--endpoint", hub.url, "--space-weights", "hub"]) == 0
    out = capsys.readouterr().out  # each repo's commit, with the command that pins it
    for key in MODELS:
        assert f"(pin it: python train_scripts/pin.py --revision {key}=" in out, key
    monkeypatch.setenv("FER_HUB_ORG", "test-user")
    return w, out


def test_publish_then_load_everything_from_the_stand_in(hub, published, tmp_path, monkeypatch):
    from fer_core import load_pretrained, load_weights

    w, out = published
    commits = {}
    for key in MODELS:
        entry = registry.PRETRAINED[key]
        repo = f"test-user/{entry.repo_name}"
        assert hub.repo_types[repo] == "model" and f"{repo}: commit " in out
        commits[key] = hub.commits[(repo, "main")]
        assert hub.tags[repo] == {entry.revision: commits[key]}
        for name in ("model.safetensors", "config.json", "README.md"):
            assert (repo, entry.revision, name) in hub.files, (repo, name)
        assert model_errors(front_matter(hub.files[(repo, "main", "README.md")].decode())) == []
    assert ("test-user/resnet-dda-ferplus", "model.safetensors") in hub.lfs_paths  # 62 MB: through LFS
    space = "test-user/fer-attention-demo"
    assert hub.repo_types[space] == "space" and hub.hardware[space] == ["zero-a10g", "zero-a10g"]
    meta = front_matter(hub.files[(space, "main", "README.md")].decode())
    assert space_errors(meta) == [] and meta["python_version"] == "3.12" and "suggested_hardware" not in meta
    assert meta["preload_from_hub"] == [f"test-user/{registry.PRETRAINED[k].repo_name} "
                                        f"config.json,model.safetensors {commits[k]}" for k in MODELS]
    assert b"spaces==" in hub.files[(space, "main", "requirements.txt")]
    assert hub.variables[space] == {"FER_HUB_ORG": "test-user"}
    assert (space, "main", "app.py") in hub.files and (space, "main", "pre-requirements.txt") not in hub.files
    assert (space, "weights/yunet/face_detection_yunet.onnx") in hub.lfs_paths  # binary: large-file storage
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


def test_republishing_moves_the_tag_and_makes_the_space_exactly_the_folder(hub, published, monkeypatch, capsys):
    """Published again with the weights copied into the Space: each tag is already on the commit (nothing has
    changed), the Space's files are the folder's (stale ones removed); then a tag left on another commit is
    moved, and said to be."""
    from fer_core.commands import publish

    w, _ = published
    assert publish.main(["--weights-dir", str(w), "--endpoint", hub.url]) == 0
    out = capsys.readouterr().out
    space = "test-user/fer-attention-demo"
    assert out.count("already on it") == 3
    assert (space, "main", "weights/fusion/model.safetensors") in hub.files
    assert "preload_from_hub" not in front_matter(hub.files[(space, "main", "README.md")].decode())
    hub.files[(space, "main", "stale.txt")] = b"left over"
    assert publish.main(["--weights-dir", str(w), "--endpoint", hub.url, "--models", "ddamfn"]) == 0
    assert (space, "main", "stale.txt") not in hub.files
    repo, tag = "test-user/ddamfn-ferplus", registry.PRETRAINED["ddamfn"].revision
    hub.tags[repo][tag] = "0" * 40
    from fer_core.commands.publish import tag_commit

    head = hub.commits[(repo, "main")]
    assert tag_commit(HfApi(endpoint=hub.url), repo, tag, head) == f"tag {tag} moved there from {'0' * 40}"
    assert hub.tags[repo][tag] == head


def test_a_tampered_config_on_the_hub_is_refused_by_name(hub, published, tmp_path, monkeypatch):
    from fer_core import WeightsError, load_pretrained

    entry = registry.PRETRAINED["ddamfn"]
    repo = f"test-user/{entry.repo_name}"
    config = json.loads(hub.files[(repo, entry.revision, "config.json")])
    config["label_names"] = config["label_names"][::-1]  # the same tensors, every face named wrongly
    hub.put(repo, entry.revision, "config.json", json.dumps(config).encode())
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "fresh-cache"))
    monkeypatch.setattr(sources, "PROJECT_WEIGHTS", tmp_path / "moved-away")
    with pytest.raises(WeightsError, match=r"config\.json: sha256 .* is not the pinned"):
        load_pretrained("ddamfn")
