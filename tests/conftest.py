import os
import tempfile
from pathlib import Path

import huggingface_hub.constants  # noqa: F401  (first, with the real environment: it reads HF_HUB_OFFLINE once)
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# the ONNX files the tests build (fer_core.runtime) go to a folder of this run, not the user's cache; the apps the
# tests start inherit it; the folder goes when the run ends
_ONNX_CACHE = tempfile.TemporaryDirectory(prefix="fer_onnx_")
os.environ.setdefault("FER_ONNX_CACHE", _ONNX_CACHE.name)

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def test_weights(tmp_path_factory):
    """Untrained weights under the three shipped names (fixtures.make_weights), built once for the tests that only
    read them."""
    from fixtures import make_weights

    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def hub():
    from hub_server import HubStandIn

    server = HubStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """No real network: the Hub is offline and the shipped-weights folder is an empty temp dir."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FER_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path


@pytest.fixture
def unpinned(monkeypatch):
    """The shipped entries without their sha256 pins, for tests that serve other weights under their names."""
    import dataclasses

    from fer_core import pretrained

    for key, entry in list(pretrained.PRETRAINED.items()):
        monkeypatch.setitem(pretrained.PRETRAINED, key, dataclasses.replace(entry, sha256=None, config_sha256=None))
