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

try:  # ZeroGPU's helper, before torch as its docs ask (demo/runner.py); it does nothing off ZeroGPU
    import spaces  # noqa: E402,F401
except ImportError:  # installed without it (requirements.txt): this is not a ZeroGPU Space
    pass

import torch  # noqa: E402

from demo import CSS, build_demo  # noqa: E402
from demo.access import launch_settings  # noqa: E402
from demo.runner import build_runner  # noqa: E402
from fer_core.predict import Analyzer  # noqa: E402

torch.set_num_threads(int(os.environ.get("FER_THREADS", "2")))


def load_analyzer(device) -> Analyzer:
    return Analyzer.from_pretrained(detector=os.environ.get("FER_DETECTOR", "auto"), device=device,
                                    engine=os.environ.get("FER_ENGINE", "auto"))


runner, load_error = build_runner(load_analyzer)
if load_error:
    load_error += ("\n\nNo trained weights are available yet: train them with train_scripts/train.py (README: "
                   "Training) or set FER_WEIGHTS_DIR to a folder with ddamfn/, resnet_dda/, fusion/.")
demo = build_demo(runner.analyzer if runner else None, load_error, runner=runner)
demo.queue(max_size=int(os.environ.get("FER_QUEUE_SIZE", "32")), default_concurrency_limit=2)

if __name__ == "__main__":
    # stop on SIGTERM as on Ctrl-C: the server closes, and its temporary files (Gradio's cache, the examples', the
    # pictures served) go with it
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # the address and port: Gradio's GRADIO_SERVER_NAME (default 127.0.0.1: this machine only; a Space or a
    # container sets it) and GRADIO_SERVER_PORT (default 7860); a login when FER_AUTH or FER_AUTH_FILE says so
    demo.launch(show_error=True, max_file_size="25mb", css=CSS, **launch_settings())
