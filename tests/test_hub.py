"""The real Hub download path against a local stand-in server (tests/hub_server.py), and its fallbacks."""
import dataclasses
import socket
import time
import warnings

import pytest
import torch

from fer_core import WeightsError, create_model, load_pretrained, save_pretrained
from fer_core import pretrained as registry
from fer_core import weights as weights_module
from fer_core.labels import FERPLUS
from fer_core.weights import build_config, sha256_file

ENTRY = dataclasses.replace(registry.PRETRAINED["ddamfn"], sha256=None)
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
    monkeypatch.setattr(weights_module, "PROJECT_WEIGHTS", tmp_path / "shipped")
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
    good = dataclasses.replace(ENTRY, sha256=sha256_file(folder / "model.safetensors"))
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", good)
    assert _same(model, load_pretrained("ddamfn"))
    bad = dataclasses.replace(ENTRY, sha256="0" * 64)
    monkeypatch.setitem(registry.PRETRAINED, "ddamfn", bad)
    # a shipped copy exists, but weights the Hub served and that fail their check are an error, not a switch
    save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(WeightsError, match="not the pinned"):
            load_pretrained("ddamfn")


def test_server_down_falls_back_to_shipped_copy(weights, env, monkeypatch):
    model, folder = weights
    save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    monkeypatch.setenv("HF_ENDPOINT", _free_port_url())
    with pytest.warns(UserWarning, match=r"cannot reach|not available.*using the local copy"):
        loaded = load_pretrained("ddamfn")
    assert _same(model, loaded)


def test_missing_on_hub_falls_back_too(hub, weights, env, monkeypatch):
    model, _ = weights
    save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # the server knows nothing of this repo
    with pytest.warns(UserWarning, match="using the local copy"):
        assert _same(model, load_pretrained("ddamfn"))


def test_no_hub_and_no_copy_fails_fast_and_clearly(env, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", _free_port_url())
    t0 = time.perf_counter()
    with pytest.raises(WeightsError, match=rf"ddamfn-ferplus@{ENTRY.revision}.*no local copy in .*shipped/ddamfn"):
        load_pretrained("ddamfn")
    assert time.perf_counter() - t0 < 5


def test_offline_mode_sends_nothing(hub, weights, env, monkeypatch):
    model, folder = weights
    _publish(hub, folder)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_pretrained(model, env / "shipped" / ENTRY.local_dir, build_config(model, label_set=FERPLUS))
    with pytest.warns(UserWarning, match="local Hub cache"):
        load_pretrained("ddamfn")
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
