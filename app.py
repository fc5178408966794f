"""Spaces entry point: load the models once, build the demo from demo/, launch it."""
import os
import signal
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# cached example results belong to this process's weights: never reuse a cache left by other weights; the folder
# goes when the process ends
if not os.environ.get("GRADIO_EXAMPLES_CACHE"):
    _EXAMPLES_CACHE = tempfile.TemporaryDirectory(prefix="fer_examples_")
    os.environ["GRADIO_EXAMPLES_CACHE"] = _EXAMPLES_CACHE.name

if os.environ.get("SPACES_ZERO_GPU", "").strip():  # a ZeroGPU Space (demo/runner.py): spaces before torch
    import spaces  # noqa: E402,F401

import torch  # noqa: E402

from demo import CSS, build_demo  # noqa: E402
from demo.runner import make_runner, on_zero_gpu  # noqa: E402
from fer_core.predict import Analyzer  # noqa: E402
from fer_core.weights import WeightsError  # noqa: E402

torch.set_num_threads(int(os.environ.get("FER_THREADS", "2")))


def load_analyzer():
    # on ZeroGPU the analyzer stays on the CPU (live frames); the runner copies it to the GPU it lends for photos
    device = "cpu" if on_zero_gpu() else os.environ.get("FER_DEVICE", "auto")
    try:
        return Analyzer.from_pretrained(detector=os.environ.get("FER_DETECTOR", "auto"), device=device,
                                        engine=os.environ.get("FER_ENGINE", "auto")), None
    except WeightsError as e:
        return None, (f"{e}\n\nNo trained weights are available yet: train them with train_scripts/train.py "
                      "(README: Training) or set FER_WEIGHTS_DIR to a folder with ddamfn/, resnet_dda/, fusion/.")


analyzer, load_error = load_analyzer()
demo = build_demo(analyzer, load_error, runner=make_runner(analyzer) if analyzer else None)
demo.queue(max_size=int(os.environ.get("FER_QUEUE_SIZE", "32")), default_concurrency_limit=2)

if __name__ == "__main__":
    # stop on SIGTERM as on Ctrl-C: the server closes, and its temporary files (Gradio's cache, the examples', the
    # pictures served) go with it
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), show_error=True,
                max_file_size="25mb", css=CSS)
