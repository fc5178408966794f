"""The app in ZeroGPU mode with the real ``spaces`` package (its version pinned in requirements-dev.txt and in the
Space) and a loopback stand-in for ZeroGPU's device API (bench/zerogpu.py), on the shipped weights.

Start-up: the package puts the main thread under its torch-function mode, where each torch call goes through its
handler; a deep copy of the models there walks every tensor copied so far at each tensor, quadratic in the
models' tensors (minutes on two cores). The app builds the CPU models outside the mode and places a second copy
on ``cuda`` once, as ZeroGPU's docs show: the test checks that no deep copy and no call walking many tensors runs
under the mode, that the package packed exactly one copy of the models for the GPU and reported its start-up, and
that the page answers within 60 s (a guard against a hang, not a speed test: bench/zerogpu_startup.py measures the
time against a plain start).

Lanes: a photo waiting for a GPU (the device API holds ``/schedule``) never delays the live webcam, which reads on
the Space's CPU in a lane of its own; then the device API answers that no GPU is available, and the visitor gets
the package's message.
"""
import json
import threading
import time

import pytest

from bench.zerogpu import DeviceApi
from demo.serve import start_app, stop_app
from bench.live_browser import BROWSER_ARGS, CHROMIUM, fake_camera
from test_app import HOPPER, chromium  # noqa: F401  (the browser fixture)

HANG_GUARD_S = 60
MAX_TENSORS_PER_CALL = 8  # a call under the mode may carry a few tensors, never the models'


def _wait(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture(scope="module")
def zerogpu(module_tmp):
    from fer_core.predict import Analyzer

    with pytest.MonkeyPatch.context() as mp:  # the ONNX files a host builds at its first start (FER_ONNX_CACHE)
        mp.setenv("FER_WEIGHTS_SOURCE", "local")
        Analyzer.from_pretrained(detector="yunet")
    tmp = module_tmp
    api = DeviceApi()
    trace, log = tmp / "trace.json", open(tmp / "app.log", "w+")
    env = {**api.env(tmp / "offload"), "FER_WEIGHTS_SOURCE": "local", "HF_HUB_OFFLINE": "1"}
    try:
        proc, url = start_app(env, log=log, timeout=HANG_GUARD_S, args=("-m", "bench.zerogpu", str(trace)))
    except RuntimeError as e:
        api.stop()
        pytest.fail(str(e))
    try:
        _wait(trace.exists, 30, "the start-up trace")
        yield url, api, json.loads(trace.read_text()), log
    finally:
        stop_app(proc)
        api.stop()


def test_zerogpu_start_up_places_one_copy_on_cuda_and_copies_nothing_under_the_mode(zerogpu):
    from fer_core.predict import Analyzer

    url, api, trace, log = zerogpu
    print(f"ZeroGPU start-up: page after {trace['page_s']} s; {trace['intercepted_calls']} torch calls under the "
          f"mode, at most {trace['max_tensors_in_one_call']} tensors in one; {trace['packed_bytes'] / 1e6:.0f} MB "
          f"packed for the GPU in {trace['cuda_tensors']} tensors")
    assert trace["deepcopies_under_mode"] == []
    assert trace["max_tensors_in_one_call"] <= MAX_TENSORS_PER_CALL, trace
    assert api.startup_reports == 1  # the package's own start-up ran, with the GPU function registered
    models = Analyzer.load_models()
    tensors = {id(t): t for m in models.values() for t in [*m.parameters(), *m.buffers()]}
    assert trace["packed_bytes"] == sum(t.numel() * t.element_size() for t in tensors.values())  # one copy
    log.seek(0)
    assert "Traceback" not in log.read()


def test_a_photo_waiting_for_a_gpu_does_not_hold_up_the_live_webcam(zerogpu, chromium, tmp_path):
    from gradio_client import Client, handle_file

    url, api, _, log = zerogpu
    video = fake_camera(HOPPER, tmp_path / "camera.y4m", frames=10)
    browser = chromium.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS + [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    photo = {}

    def send_photo():
        try:
            photo["result"] = Client(url, verbose=False).predict(handle_file(str(HOPPER)), api_name="/predict")
        except Exception as e:  # noqa: BLE001  (what the visitor is told)
            photo["error"] = str(e)

    thread = threading.Thread(target=send_photo, daemon=True)
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"]).new_page()
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Live webcam").click()
        page.locator("#webcam").get_by_text("Click to Access Webcam").click()
        record = page.locator("#webcam button.capture-button").filter(has_text="Record")
        record.wait_for(timeout=30_000)
        # a photo asks ZeroGPU for a GPU, which keeps it waiting (the package's client gives up after 60 s)
        api.hold.set()
        thread.start()
        _wait(lambda: api.waiting == 1, HANG_GUARD_S, "the photo asking ZeroGPU for a GPU")
        record.click()  # then a webcam starts streaming

        def readings():
            text = page.locator("#live-rate").inner_text()
            return int(text.split("reading ")[1].split(";")[0]) if "reading " in text else 0

        _wait(lambda: readings() >= 3, 45, "three live readings while the photo waits for a GPU")
        assert api.waiting == 1 and "result" not in photo and "error" not in photo  # it waited all along
    finally:
        browser.close()
        api.release()
    thread.join(60)
    assert "No GPU was available" in photo.get("error", ""), photo  # the package's message, shown to the visitor
    assert len(api.schedules) == 1 and api.schedules[0]["durationSeconds"] == "15"  # gpu_seconds: no maps


EMULATED = """
import json, sys
import app  # builds the page's runner as on the Space: the CPU models, and the GPU's copy on (emulated) cuda
photo = sys.argv[1]
out = {"where": app.runner.where, "gpu_device": str(next(app.runner.gpu.slots["ddamfn"].model.parameters()).device)}
for maps in (False, True):  # on this thread CUDA is the package's emulation: a tensor left on the CPU is an error
    a, b = app.runner.gpu.analyze(photo, maps=maps).faces, app.runner.analyzer.analyze(photo, maps=maps).faces
    out[str(maps)] = {k: [a[0].models[k].top, b[0].models[k].top,
                          float(abs(a[0].models[k].logits - b[0].models[k].logits).max())] for k in a[0].models}
print(json.dumps(out))
"""


def test_the_gpu_copy_reads_on_emulated_cuda_what_the_cpu_reads(tmp_path):
    """Before a GPU is lent, the package emulates CUDA on the thread that imported it, refusing (as CUDA would)
    an operation that mixes a CPU tensor with a "cuda" one: the GPU's copy of the models reads a photo there, with
    and without maps, as the CPU copy does (ONNX Runtime and bfloat16 maps on the CPU: within their rounding)."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    api = DeviceApi()
    try:
        env = dict(os.environ, **api.env(tmp_path / "offload"), FER_WEIGHTS_SOURCE="local", HF_HUB_OFFLINE="1")
        run = subprocess.run([sys.executable, "-c", EMULATED, str(HOPPER)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    finally:
        api.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["gpu_device"] == "cuda:0" and "ZeroGPU" in out["where"]
    for maps, tol in (("False", 1e-3), ("True", 0.05)):
        for key, (gpu_top, cpu_top, diff) in out[maps].items():
            assert gpu_top == cpu_top and diff < tol, (maps, key, out[maps])
