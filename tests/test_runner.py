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


def test_on_zero_gpu_photos_run_in_the_gpu_function_and_live_frames_on_the_cpu(analyzer, test_weights, monkeypatch):
    from demo.runner import ZeroGpuRunner, on_zero_gpu
    from demo.ui import PREDICTED, READINGS, build_demo
    from demo.render import MAP_MODES
    from fer_core.images import load_image
    from fer_core.predict import Analyzer

    spaces = StandInSpaces()
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert on_zero_gpu()
    # the GPU's own copy of the models, loaded apart (the stand-in lends no GPU: it stays on the CPU here)
    gpu = Analyzer(Analyzer.load_models({k: test_weights / k for k in MODELS}), detector=analyzer.detector,
                   device="cpu", engine="torch")
    runner = ZeroGpuRunner(analyzer, gpu, spaces_module=spaces)
    assert runner.gpu is gpu and gpu.slots["ddamfn"].model is not analyzer.slots["ddamfn"].model
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
    assert np.allclose(a, b, atol=1e-3)  # torch there, ONNX Runtime here (test_served: within 1e-3)


def test_on_zero_gpu_photos_and_live_frames_wait_in_lanes_of_their_own(analyzer, monkeypatch):
    """Every event that reads photos (the GPU's) shares one group, every event that reads on the Space's CPU
    (live frames, clips) another: a photo waiting for a GPU never holds the webcam's slot (test_zerogpu.py runs
    it). The GPU lane holds FER_GPU_CONCURRENCY calls (default 1), the CPU lane the machine's figure."""
    from demo.runner import ZeroGpuRunner
    from demo.ui import build_demo

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.delenv("FER_GPU_CONCURRENCY", raising=False)
    demo = build_demo(analyzer, runner=ZeroGpuRunner(analyzer, analyzer, spaces_module=StandInSpaces()),
                      concurrency=3)
    groups = {d.name: (d.concurrency_id, d.concurrency_limit) for d in demo.fns.values() if d.fn is not None}
    for name in ("analyse", "pick", "change_mode", "predict", "load_example_output"):
        assert groups[name] == ("gpu", 1), (name, groups)
    for name in ("read_frame", "analyse_clip"):
        assert groups[name] == ("cpu", 3), (name, groups)
    monkeypatch.setenv("FER_GPU_CONCURRENCY", "2")
    assert ZeroGpuRunner(analyzer, analyzer, spaces_module=StandInSpaces()).lanes(3)["photo"]["concurrency_limit"] == 2


def test_zero_gpu_is_what_the_spaces_package_says_it_is(monkeypatch):
    """The same rule as the package (spaces/config.py): 1, t or true in any case; anything else is off. (Gradio's
    own check wants exactly "true", the value the Hub sets.)"""
    from spaces.config import boolean

    from demo.common import analysis_concurrency
    from demo.runner import cpu_concurrency, on_zero_gpu

    for value in ("true", "True", "TRUE", "1", "t", "T", "yes", "on", "0", "false", "", " true"):
        monkeypatch.setenv("SPACES_ZERO_GPU", value)
        assert on_zero_gpu() == boolean(value), value
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.delenv("FER_CONCURRENCY", raising=False)
    assert analysis_concurrency() == cpu_concurrency()  # the package's one CUDA device is lent per call only


def test_off_zero_gpu_the_page_runs_on_its_own_device_and_spaces_does_nothing(analyzer, monkeypatch):
    import spaces  # the real package: effect-free off ZeroGPU

    from demo.runner import Runner, build_runner

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setenv("FER_DEVICE", "cpu")
    asked = []
    runner, error = build_runner(lambda device: asked.append(device) or analyzer)
    assert type(runner) is Runner and "CPU" in runner.where and error is None and asked == ["cpu"]
    assert runner.lanes(2)["photo"] == runner.lanes(2)["cpu"] == {"concurrency_id": "analysis", "concurrency_limit": 2}

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
