"""Start the app (``app.py``) in a subprocess on a free local port and wait until it answers: one helper for the
tests and the benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict | None = None, log=None, timeout: float = 600.0, args=("app.py",)):
    """(process, url) of ``python app.py`` (or ``python *args``) on a free port with ``env`` added to the
    environment (a value of None removes the variable; ``GRADIO_SERVER_NAME`` is left as it is: the app's default
    is 127.0.0.1); output goes to the file object ``log`` (default: discarded). Raises RuntimeError with the log's
    tail if it exits first, or has not answered within ``timeout`` seconds (a hang guard: a busy machine may take
    minutes to build the ONNX files)."""
    port = free_port()
    full = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
                **(env or {}))
    full = {k: v for k, v in full.items() if v is not None}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full,
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    exited = proc.poll()
    proc.kill()
    proc.wait()
    tail = ""
    if log is not None:
        log.flush()
        log.seek(0)
        tail = log.read()[-3000:]
    why = f"exited with {exited}" if exited is not None else f"did not answer in {timeout:.0f} s"
    raise RuntimeError(f"the app {why}:\n{tail}")


def stop_app(proc, timeout: float = 120.0) -> None:
    """Stop the app as a host does (SIGTERM), then kill it if it has not closed within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux ``/proc``), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
