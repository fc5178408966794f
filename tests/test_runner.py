"""Where the page's analyses run: on a ZeroGPU Space a photo goes through the @spaces.GPU function, sized to the
work, and a live frame stays on the Space's CPU; off ZeroGPU the real `spaces` package changes nothing."""
import sys
import types

import numpy as np
import pytest

from conftest import HOPPER

MODELS = ("ddamfn", "resnet_dda", "fusion")


class StandInSpaces(types.ModuleType):
    """What the page needs of `spaces` on ZeroGPU: GPU(duration=...) wrapping a function; every call recorded
    with the duration asked for it."""

    def __init__(self):
        super().__init__("spaces")
        self.calls = []

    def GPU(self, fn=None, duration=60):  # noqa: N802  (the package's name)
        def wrap(f):
            def on_gpu(*args, **kwargs):
                self.calls.append((f.__name__, duration(*args, **kwargs) if callable(duration) else duration))
                return f(*args, **kwargs)
            return on_gpu
        return wrap(fn) if fn is not None else wrap


@pytest.fixture(scope="module")
def analyzer(test_weights):
    from fer_core.predict import Analyzer

    return Analyzer.from_pretrained({k: test_weights / k for k in MODELS}, detector="yunet", device="cpu")


def _handler(demo, name):
    return next(d.fn for d in demo.fns.values() if d.name == name)


def test_on_zero_gpu_photos_run_in_the_gpu_function_and_live_frames_on_the_cpu(analyzer, monkeypatch):
    from demo.runner import ZeroGpuRunner, on_zero_gpu
    from demo.ui import PREDICTED, READINGS, build_demo
    from demo.render import MAP_MODES
    from fer_core.images import load_image

    spaces = StandInSpaces()
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert on_zero_gpu()
    runner = ZeroGpuRunner(analyzer, device="cpu")  # the stand-in lends no GPU: the copy stays on the CPU here
    assert runner.gpu is not analyzer and runner.gpu.slots["ddamfn"].model is not analyzer.slots["ddamfn"].model
    demo = build_demo(analyzer, runner=runner, concurrency=1)
    out = _handler(demo, "analyse")(str(HOPPER), False, PREDICTED, list(READINGS)[0], MAP_MODES[0])
    assert any(isinstance(v, list) and v and v[0][0] == "1" for v in out.values())  # the faces table
    assert spaces.calls == [("_analyze_on_gpu", 10 + 1.5 * analyzer.max_faces)]  # with maps: 25 s
    _handler(demo, "predict")(str(HOPPER))  # the API, without maps: a shorter call
    assert spaces.calls[-1] == ("_analyze_on_gpu", 10 + 0.5 * analyzer.max_faces)
    before = len(spaces.calls)
    _handler(demo, "read_frame")(load_image(HOPPER), False, 5, 0, None)
    assert len(spaces.calls) == before  # live frames never take the GPU
    # the copy on the GPU reads what the CPU analyzer reads
    a = runner.gpu.analyze(HOPPER).faces[0].models["fusion"].logits
    b = analyzer.analyze(HOPPER).faces[0].models["fusion"].logits
    assert np.allclose(a, b, atol=1e-5)


def test_off_zero_gpu_the_page_runs_on_its_own_device_and_spaces_does_nothing(analyzer, monkeypatch):
    import spaces  # the real package: effect-free off ZeroGPU

    from demo.runner import Runner, make_runner

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    runner = make_runner(analyzer)
    assert type(runner) is Runner and "CPU" in runner.where

    def f(x):
        return x

    assert spaces.GPU(duration=5)(f) is f and spaces.GPU(f) is f


def test_the_device_is_a_setting(test_weights, monkeypatch):
    import torch

    from fer_core.predict import resolve_device

    monkeypatch.delenv("FER_DEVICE", raising=False)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("FER_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device here"):
            resolve_device("cuda")
