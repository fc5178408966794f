"""The real Hub download path against a local stand-in server (tests/hub_server.py), and its fallbacks."""
import dataclasses
import socket
import warnings

import pytest
import torch

from fer_core import WeightsError, create_model, load_pretrained, save_pretrained
from fer_core import pretrained as registry
from fer_core import sources
from fer_core.labels import FERPLUS
from fer_core.weights import build_config, sha256_file

ENTRY = dataclasses.replace(registry.PRETRAINED["ddamfn"], sha256=None, config_sha256=None)
pytestmark = pytest.mark.usefixtures("unpinned")  # these tests serve their own weights under the shipped names


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = create_model("ddamfn").eval()
    folder = save_pretrained(model, tmp_path / "built", build_config(model, label_set=FERPLUS))
    return model, folder


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Online, an empty Hub cache, and the project's own weights/ (the fallback) moved to tmp/shipped."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FER_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(sources, "PROJECT_WEIGHTS", tmp_path / "shipped")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _publish(hub, folder, entry=ENTRY):
    for name in ("config.json", "model.safetensors"):
        hub.put(entry.hf_hub_id, entry.revision, name, (folder / name).read_bytes())


def _free_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def _same(model, loaded):
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        return torch.equal(model(x), loaded(x))


def test_download_then_cache_hit_then_server_down(hub, weights, env, monkeypatch):
    model, folder = weights
    _publish(hub, folder)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: this came from the Hub
        loaded = load_pretrained("ddamfn")
    assert _same(model, loaded) and hub.gets("model.safetensors") == 1
    assert (env / "cache").exists() and "ddamfn-ferplus" in str(list((env / "cache").iterdir()))
    # cache hit: the file is not fetched again
    load_pretrained("ddamfn")
    assert hub.gets("model.safetensors") == 1
    # server down: the Hub cache still serves it, without the fallback
    hub.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _same(model, load_pretrained("ddamfn"))


def test_pinned_sha256_is_checked(hub, weights, env, monkeypatch):
    model, folder = weights
    _publish(hub, folder)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    good = dataclasses.replace(ENTRY, sha256=sha256_file(folder / "model.safetensors"),
                               config_sha256=sha256_file(folder / "config.json"))
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", good)
    assert _same(model, load_pretrained("ddamfn"))
    bad = dataclasses.replace(good, sha256="0" * 64)
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", bad)
    # a shipped copy that fails its pin sends the loader to the Hub (with a warning); weights the Hub serves that
    # fail their pin too are an error, not a switch to anything else
    save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    with pytest.warns(UserWarning, match="shipped/ddamfn/.*: sha256 .* is not the pinned"):
        with pytest.raises(WeightsError, match="not the pinned weights: refused"):
            load_pretrained("ddamfn")


def test_a_config_that_is_not_the_pinned_one_is_refused(hub, weights, env, monkeypatch):
    """The same tensors with the label order permuted in config.json would name every face wrongly: the pin
    covers config.json too, and the message names it."""
    import json

    model, folder = weights
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    pinned = dataclasses.replace(ENTRY, sha256=sha256_file(folder / "model.safetensors"),
                                 config_sha256=sha256_file(folder / "config.json"))
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", pinned)
    config = json.loads((folder / "config.json").read_text())
    config["label_names"] = config["label_names"][::-1]
    hub.put(ENTRY.hf_hub_id, ENTRY.revision, "config.json", json.dumps(config).encode())
    hub.put(ENTRY.hf_hub_id, ENTRY.revision, "model.safetensors", (folder / "model.safetensors").read_bytes())
    with pytest.raises(WeightsError, match=r"ddamfn-ferplus@v\d+: .*config\.json: sha256 .* is not the pinned"):
        load_pretrained("ddamfn")


def test_the_shipped_copy_comes_first_and_the_hub_only_when_asked(hub, weights, env, monkeypatch):
    """With a shipped copy that matches its pins, nothing is sent, even while the Hub answers with other weights
    under the same name; FER_WEIGHTS_SOURCE=hub (or source="hub") asks the Hub; =local never asks it."""
    model, folder = weights
    torch.manual_seed(1)
    other = create_model("ddamfn").eval()
    _publish(hub, save_pretrained(other, env / "other", build_config(other, label_set=FERPLUS)))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    shipped = save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    pinned = dataclasses.replace(ENTRY, sha256=sha256_file(shipped / "model.safetensors"),
                                 config_sha256=sha256_file(shipped / "config.json"))
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", pinned)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _same(model, load_pretrained("ddamfn"))
    assert hub.log == []
    # asked for the Hub: it serves, and its copy is held to the same pins (here other weights: refused)
    monkeypatch.setenv("FER_WEIGHTS_SOURCE", "hub")
    with pytest.raises(WeightsError, match="not the pinned weights: refused"):
        load_pretrained("ddamfn")
    assert hub.gets("config.json") == 1
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", ENTRY)  # unpinned: the Hub's copy is taken as it is
    assert _same(other, load_pretrained("ddamfn")) and _same(model, load_pretrained("ddamfn", source="local"))
    # local only: a missing copy is an error that says so, and nothing is sent
    monkeypatch.setenv("FER_WEIGHTS_SOURCE", "local")
    monkeypatch.setattr(sources, "PROJECT_WEIGHTS", env / "nowhere")
    sent = len(hub.log)
    with pytest.raises(WeightsError, match="no copy in .*nowhere/ddamfn.*FER_WEIGHTS_SOURCE=local"):
        load_pretrained("ddamfn")
    assert len(hub.log) == sent
    monkeypatch.setenv("FER_WEIGHTS_SOURCE", "anywhere")
    with pytest.raises(ValueError, match="FER_WEIGHTS_SOURCE='anywhere'"):
        load_pretrained("ddamfn")


def test_the_hub_organisation_is_a_setting(monkeypatch):
    monkeypatch.delenv("FER_HUB_ORG", raising=False)
    assert registry.PRETRAINED["ddamfn"].hf_hub_id == "fer-attention/ddamfn-ferplus"
    monkeypatch.setenv("FER_HUB_ORG", "my-lab")
    assert registry.PRETRAINED["fusion"].hf_hub_id == "my-lab/fusion-ferplus"


HUB_DOWN = (rf"no copy in .*shipped/ddamfn; and the Hub's copy cannot be had: "
            rf".*(cannot reach|ddamfn-ferplus@{ENTRY.revision})")


def test_a_missing_shipped_copy_with_the_hub_down_fails_clearly(env, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", _free_port_url())  # nothing listens: the connection is refused
    with pytest.raises(WeightsError, match=HUB_DOWN):
        load_pretrained("ddamfn")


def test_a_hub_that_never_answers_costs_one_bounded_probe(env, monkeypatch):
    """A Hub that accepts connections and never answers gets one request, bounded by FER_HUB_TIMEOUT, and no
    retry (huggingface_hub's own loop would retry): counted by the server, not timed."""
    server = socket.socket()  # never accepts while the request runs: the kernel queues each connection
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("FER_HUB_TIMEOUT", "0.5")
    try:
        with pytest.raises(WeightsError, match=HUB_DOWN):
            load_pretrained("ddamfn")
        server.setblocking(False)
        accepted = []
        while True:  # every connection the loader made, now that it has given up
            try:
                accepted.append(server.accept()[0])
            except BlockingIOError:
                break
    finally:
        server.close()
    for c in accepted:
        c.close()
    assert len(accepted) == 1, f"{len(accepted)} connections to a Hub that never answers"


def test_offline_mode_sends_nothing(hub, weights, env, monkeypatch):
    model, folder = weights
    _publish(hub, folder)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="not in the local Hub cache and the Hub is not used"):
        load_pretrained("ddamfn")
    save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _same(model, load_pretrained("ddamfn"))
    assert hub.log == []


def test_weights_dir_comes_before_the_hub(hub, weights, env, monkeypatch):
    """A folder named by FER_WEIGHTS_DIR (a user's own training) is served even while the Hub answers with
    other weights under the same name; nothing is fetched."""
    model, folder = weights
    _publish(hub, folder)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    torch.manual_seed(1)
    own = create_model("ddamfn").eval()
    save_pretrained(own, env / "mine" / ENTRY.local_dir, build_config(own, label_set=FERPLUS))
    monkeypatch.setenv("FER_WEIGHTS_DIR", str(env / "mine"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_pretrained("ddamfn")
    assert _same(own, loaded) and not _same(model, loaded) and hub.log == []
    # a FER_WEIGHTS_DIR without this model's folder leaves the Hub in charge
    monkeypatch.setenv("FER_WEIGHTS_DIR", str(env / "elsewhere"))
    assert _same(model, load_pretrained("ddamfn")) and hub.gets("model.safetensors") == 1
