"""The ONNX Runtime path for reading without maps: exported once per weight and cached beside it under its sha256,
rebuilt when the tensors change, checked against torch, and what the Analyzer uses when it is equal."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ASTRONAUT, HOPPER

MODELS = ("ddamfn", "resnet_dda", "fusion")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def weights(test_weights, module_tmp):
    root = module_tmp
    for key in MODELS:
        shutil.copytree(test_weights / key, root / key)
    return root


def test_the_onnx_file_is_cached_beside_the_weights_by_their_sha256_and_rebuilt_when_they_change(test_weights,
                                                                                                 tmp_path):
    from fer_core import save_pretrained
    from fer_core.runtime import GRAPH_VERSION, cache_path, onnx_reader
    from fer_core.weights import load_weights, weights_sha256

    weights = tmp_path
    shutil.copytree(test_weights / "ddamfn", weights / "ddamfn")
    model = load_weights(weights / "ddamfn")
    reader, why = onnx_reader(model, 64)
    assert reader is not None, why
    path = cache_path(model)
    assert path.parent.parent == Path(os.environ["FER_ONNX_CACHE"])  # not in weights/: the cache folder
    assert path.name == f"model-{weights_sha256(model)[:16]}-g{GRAPH_VERSION}.onnx"
    stamp = path.stat().st_mtime_ns
    assert onnx_reader(model, 64)[0].path == path and path.stat().st_mtime_ns == stamp  # found, not rebuilt
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        assert (reader(x)["logits"] - model(x)).abs().max() < 1e-3
    with torch.no_grad():  # new tensors: a new file, and the old one goes
        model.fc.bias.add_(1.0)
    save_pretrained(model, weights / "ddamfn", dict(model.pretrained_cfg))
    changed = load_weights(weights / "ddamfn")
    new_reader, _ = onnx_reader(changed, 64)
    assert new_reader.path != path and not path.exists() and new_reader.path.exists()
    with torch.inference_mode():
        assert (new_reader(x)["logits"] - changed(x)).abs().max() < 1e-3


def test_the_cache_forgets_weights_folders_that_are_gone(test_weights, tmp_path, monkeypatch):
    from fer_core.runtime import cache_path, onnx_reader
    from fer_core.weights import load_weights

    monkeypatch.setenv("FER_ONNX_CACHE", str(tmp_path / "cache"))
    for name in ("a", "b"):
        shutil.copytree(test_weights / "ddamfn", tmp_path / name)
    first = load_weights(tmp_path / "a")
    assert onnx_reader(first, 64)[0] is not None
    kept = cache_path(first).parent
    assert (kept / "source").read_text() == str((tmp_path / "a").resolve())
    shutil.rmtree(tmp_path / "a")  # a run's export or a test's weights, deleted
    second = load_weights(tmp_path / "b")
    assert onnx_reader(second, 64)[0] is not None  # building another file clears the orphan
    assert not kept.exists() and cache_path(second).exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [cache_path(second).parent.name]


def test_the_analyzer_reads_through_onnx_what_torch_reads(weights):
    """A reading chains each model's two ONNX files (the part before Grad-CAM's target, the maps' own session, then
    the rest), so that ONNX Runtime holds each weight once; it reads what torch reads."""
    from fer_core.predict import Analyzer
    from fer_core.runtime import cache_path

    names = {k: weights / k for k in MODELS}
    fast = Analyzer.from_pretrained(names, detector="yunet", device="cpu")
    slow = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch")
    assert fast.engine == "onnx" and fast.engine_notes == [] and slow.engine == "torch"
    assert fast.slots["ddamfn"].onnx is not None and fast.slots["fusion"].onnx is None  # the head stays in torch
    for key in ("ddamfn", "resnet_dda"):
        slot = fast.slots[key]
        assert slot.onnx.prefix is slot.prefix  # one session of the prefix serves the readings and the maps
        assert slot.onnx.paths == (cache_path(slot.model, "prefix"), cache_path(slot.model, "suffix"))
        files = sorted(p.name.split("-")[0] for p in cache_path(slot.model).parent.glob("*.onnx"))
        assert files == ["prefix", "suffix"], files  # no whole-model file: its weights would be held twice
    a, b = fast.analyze(ASTRONAUT).faces[0].models, slow.analyze(ASTRONAUT).faces[0].models
    for key in MODELS:
        assert np.abs(a[key].logits - b[key].logits).max() < 1e-3, key
        assert a[key].top == b[key].top
    with_maps = fast.analyze(ASTRONAUT, maps=True).faces[0].models
    assert with_maps["ddamfn"].gradcam is not None


def test_without_onnxruntime_the_analyzer_keeps_torch_and_says_why(weights, monkeypatch):
    from fer_core import runtime
    from fer_core.predict import Analyzer

    monkeypatch.setattr(runtime, "available", lambda: False)
    a = Analyzer.from_pretrained({k: weights / k for k in MODELS}, detector="yunet", device="cpu")
    assert a.engine == "torch" and all("onnxruntime is not installed" in n for n in a.engine_notes)
    with pytest.raises(RuntimeError, match="onnxruntime is not installed"):
        Analyzer.from_pretrained({k: weights / k for k in MODELS}, detector="yunet", device="cpu", engine="onnx")


def test_the_maps_run_the_part_before_the_gradcam_target_through_onnx_with_the_same_maps(weights):
    """With maps, the part of each model before its Grad-CAM target runs in ONNX Runtime (a ``prefix`` file beside
    the ``model`` one, checked against torch): probabilities, Grad-CAM and own attention equal torch's."""
    from fer_core.predict import Analyzer
    from fer_core.runtime import GRAPH_VERSION, cache_path
    from fer_core.weights import weights_sha256

    names = {k: weights / k for k in MODELS}
    fast = Analyzer.from_pretrained(names, detector="yunet", device="cpu", maps_dtype="float32")
    slow = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch", maps_dtype="float32")
    for key in ("ddamfn", "resnet_dda"):
        model = fast.slots[key].model
        assert fast.slots[key].prefix.path == cache_path(model, "prefix")
        assert cache_path(model, "prefix").name == f"prefix-{weights_sha256(model)[:16]}-g{GRAPH_VERSION}.onnx"
        assert slow.slots[key].prefix is None
    assert fast.slots["fusion"].prefix is None
    a = fast.analyze(ASTRONAUT, maps=True).faces[0].models
    b = slow.analyze(ASTRONAUT, maps=True).faces[0].models
    for key in MODELS:
        assert a[key].top == b[key].top and np.abs(a[key].logits - b[key].logits).max() < 1e-3, key
        assert np.abs(a[key].gradcam - b[key].gradcam).max() < 1e-3, key
        assert np.abs(a[key].attention - b[key].attention).max() < 1e-3, key


def test_maps_in_bfloat16_run_resnet_dda_after_its_target_in_a_copy_and_read_as_float32_does(weights, monkeypatch):
    """``maps_dtype`` bfloat16: the model that asks for it (ResNet+DDA: most of its weights lie after its Grad-CAM
    target) runs that part in a frozen bfloat16 copy, the float32 model untouched; the readings with maps keep their
    labels and stay within bfloat16's rounding of float32's, the maps close to float32's; readings without maps never
    use the copy. FER_MAPS_DTYPE chooses for ``auto``; anything else is refused."""
    from fer_core.hardware import cpu_has_native_bf16
    from fer_core.predict import Analyzer

    names = {k: weights / k for k in MODELS}
    f32 = Analyzer.from_pretrained(names, detector="yunet", device="cpu", maps_dtype="float32")
    b16 = Analyzer.from_pretrained(names, detector="yunet", device="cpu", maps_dtype="bfloat16")
    assert f32.maps_dtype == "float32" and all(s.lean is None for s in f32.slots.values())
    assert b16.maps_dtype == "bfloat16" and [k for k, s in b16.slots.items() if s.lean is not None] == ["resnet_dda"]
    lean, model = b16.slots["resnet_dda"].lean, b16.slots["resnet_dda"].model
    assert lean is not model and all(p.dtype == torch.bfloat16 and not p.requires_grad for p in lean.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for photo in (ASTRONAUT, HOPPER):
        a, b = f32.analyze(photo, maps=True).faces[0].models, b16.analyze(photo, maps=True).faces[0].models
        plain = b16.analyze(photo).faces[0].models
        for key in MODELS:
            assert a[key].top == b[key].top, key
            assert np.abs(a[key].logits - b[key].logits).max() < 0.05, key  # bfloat16 keeps 8 bits of mantissa
            assert max(abs(a[key].probs[c] - b[key].probs[c]) for c in a[key].probs) < 0.01, key
            assert np.abs(plain[key].logits - a[key].logits).max() < 1e-3, key  # no maps: float32 throughout
            if a[key].gradcam.std() > 0:
                assert np.corrcoef(a[key].gradcam.ravel(), b[key].gradcam.ravel())[0, 1] > 0.9, key
    # auto: no bfloat16 copy beside ONNX Runtime's (each weight held at most twice); with torch alone, on CPUs
    # that compute bfloat16 natively, the copy is the second
    auto = Analyzer.from_pretrained(names, detector="yunet", device="cpu")
    assert auto.maps_dtype == "float32" and all(s.lean is None for s in auto.slots.values())
    alone = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch")
    assert alone.maps_dtype == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert (alone.slots["resnet_dda"].lean is not None) == cpu_has_native_bf16()
    copy = f32.to("cpu")  # a copy on another device asks for what the original was asked
    assert copy.maps_dtype == "float32" and copy.asked == f32.asked and copy.slots["resnet_dda"].lean is None
    monkeypatch.setenv("FER_MAPS_DTYPE", "float32")
    assert Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch").maps_dtype == "float32"
    monkeypatch.setenv("FER_MAPS_DTYPE", "float16")
    with pytest.raises(ValueError, match="maps_dtype"):
        Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch")
