import os
import shutil
import tempfile
from pathlib import Path

import huggingface_hub.constants  # noqa: F401  (first, with the real environment: it reads HF_HUB_OFFLINE once)
import pytest
import torch

from fer_core.data import data_root, dataset_root

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "demo" / "examples"  # Grace Hopper and Eileen Collins, public domain
HOPPER, ASTRONAUT = PHOTOS / "grace_hopper.jpg", PHOTOS / "astronaut.png"
YUNET = ROOT / "weights" / "yunet" / "face_detection_yunet.onnx"
DATA = data_root()  # FER_DATA (default ~/.cache/fer/data): FER+ and FER2013, laid out by `fer-data layout`
SHARED = ROOT.parent / "shared"  # tests/test_app.py's photos only, until it reads PHOTOS; no data is read from here
# the ONNX files the tests build (fer_core.runtime) go to a folder of this run, not the user's cache; the apps the
# tests start inherit it; the folder goes when the run ends
_ONNX_CACHE = tempfile.TemporaryDirectory(prefix="fer_onnx_")
os.environ.setdefault("FER_ONNX_CACHE", _ONNX_CACHE.name)

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _drop_dead_onnx_files():
    """After each test, the cached ONNX files of weights folders that are gone (a test's tmp_path, removed when it
    passes; a module's folder): some 200 MB each, otherwise held until the next ONNX file is built."""
    yield
    from fer_core.runtime import prune_orphans

    prune_orphans(Path(os.environ["FER_ONNX_CACHE"]))


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request):
    """A folder for what one test module's fixtures share, removed when its tests end (folders of
    ``tmp_path_factory`` stay to the end of the run: the suite would hold every module's weights at once)."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield path
    shutil.rmtree(path, ignore_errors=True)


def needs_data(*kinds):
    """Skip a test whose datasets are not under FER_DATA, naming what is missing; with FER_REQUIRE_DATA set (CI:
    .ci/run) the test runs instead, and a missing dataset fails it with what to download and from where."""
    missing = [k for k in kinds if not dataset_root(k).is_dir()]
    return pytest.mark.skipif(bool(missing) and not os.environ.get("FER_REQUIRE_DATA"),
                              reason=f"needs {' and '.join(missing)} under FER_DATA={DATA} (docs/training.md, "
                                     f"'Get the data'; `fer-data layout` writes them)")


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
