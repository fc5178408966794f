"""The app in ZeroGPU mode on a machine without ZeroGPU: the real ``spaces`` package, a loopback stand-in for its
device API, and a driver that records what runs under the package's torch-function mode while the app starts.

ZeroGPU mode is ``SPACES_ZERO_GPU=true`` and ``SPACES_ZERO_DEVICE_API_URL``; importing ``spaces`` then patches
torch (CUDA reported available, one device) and enters a torch-function mode on the importing thread, in which
every torch call goes through the package's handler; the first ``launch()`` packs the tensors placed on ``cuda``
and reports to the device API (``POST /startup-report``, answered 200 here). A ``@spaces.GPU`` call asks
``POST /schedule`` for a GPU: :class:`DeviceApi` can hold that request (a photo waiting for a GPU) and then answers
503, "no GPU available", which the package turns into the error a visitor sees; lending a GPU needs one.

    python -m bench.zerogpu TRACE.json      # app.py, traced (run with the environment above, from the checkout)

The trace (written once the page answers): the top-level ``copy.deepcopy`` calls made under the mode (of models or
tensors, and of anything else, apart), the number of torch calls the mode intercepted and the most tensors one of
them carried (a call that walks every tensor made so far, as a deep copy's memo does under the mode, makes
start-up quadratic in the models' tensors), the bytes the package packed for the GPU, and the seconds from start
to the first page.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class DeviceApi:
    """A loopback stand-in for ZeroGPU's device API: start-up reports are taken; ``/schedule`` requests are
    recorded and, while :attr:`hold` is set, kept waiting (up to ``hold_s``), then answered 503."""

    def __init__(self, hold_s: float = 120.0):
        self.startup_reports, self.schedules, self.hold_s = 0, [], hold_s
        self.hold = threading.Event()  # set: /schedule waits until release()
        self.released = threading.Event()
        self.waiting = 0  # /schedule requests being held now
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                url = urlparse(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/startup-report":
                    api.startup_reports += 1
                    return self._answer(200)
                if url.path == "/schedule":
                    api.schedules.append({k: v[0] for k, v in parse_qs(url.query).items()})
                    if api.hold.is_set():
                        api.waiting += 1
                        api.released.wait(api.hold_s)
                        api.waiting -= 1
                    return self._answer(503)
                if url.path in ("/allow", "/release"):
                    return self._answer(200)
                return self._answer(404)

            def _answer(self, code):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self, offload_dir) -> dict:
        """The environment of a ZeroGPU Space pointing at this stand-in (tensors packed into ``offload_dir``)."""
        return {"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": self.url,
                "ZEROGPU_OFFLOAD_DIR": str(offload_dir)}

    def release(self):
        self.released.set()

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _trace(out_path: str) -> None:
    """Install the recorders, then run app.py as ``__main__``."""
    import copy
    import os
    import runpy
    import urllib.request

    t0 = time.perf_counter()
    stats = {"deepcopies_under_mode": [], "intercepted_calls": 0, "max_tensors_in_one_call": 0}
    import spaces  # noqa: F401  (as app.py does first: the mode is entered on this thread)
    import torch
    from spaces.zero.torch import patching
    from torch.overrides import _get_current_function_mode_stack
    from torch.utils._pytree import tree_leaves

    def under_mode() -> bool:
        return any(isinstance(m, patching.ZeroGPUFunctionMode) for m in _get_current_function_mode_stack())

    deepcopy = copy.deepcopy

    def holds_tensors(x) -> bool:  # a module, a tensor, or a container of them (as Analyzer.to copied)
        items = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else [x]
        return any(isinstance(v, (torch.nn.Module, torch.Tensor)) for v in items)

    def recording_deepcopy(x, memo=None, _nil=[]):  # noqa: B006  (copy.deepcopy's own signature)
        if memo is None and under_mode():
            kind = "deepcopies_under_mode" if holds_tensors(x) else "other_deepcopies_under_mode"
            stats.setdefault(kind, []).append(type(x).__name__)
        return deepcopy(x, memo, _nil)

    handler = patching.ZeroGPUFunctionMode.__torch_function__

    def counting(self, func, types, args=(), kwargs=None):
        stats["intercepted_calls"] += 1
        n = sum(isinstance(t, torch.Tensor) for t in tree_leaves((args, kwargs or {})))
        stats["max_tensors_in_one_call"] = max(stats["max_tensors_in_one_call"], n)
        return handler(self, func, types, args, kwargs)

    copy.deepcopy = recording_deepcopy
    patching.ZeroGPUFunctionMode.__torch_function__ = counting
    url = f"http://127.0.0.1:{os.environ.get('GRADIO_SERVER_PORT', '7860')}"

    def write_when_served():
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        stats["page_s"] = round(time.perf_counter() - t0, 2)
        stats["packed_bytes"] = sum(p.total_size for p in patching.tensor_packs)
        stats["cuda_tensors"] = len(patching.cuda_aliases)
        with open(out_path + ".tmp", "w") as f:
            json.dump(stats, f)
        os.replace(out_path + ".tmp", out_path)

    threading.Thread(target=write_when_served, daemon=True).start()
    runpy.run_path("app.py", run_name="__main__")


if __name__ == "__main__":
    _trace(sys.argv[1])
