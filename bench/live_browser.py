"""Live webcam readings that reach a browser: the app started offline, headless Chromium (Playwright, Debian's
/usr/bin/chromium) streaming a fake camera (a still photo with sensor noise, played by Chromium's own fake
capture device) through the live tab; the readings are counted in the browser as they arrive (each carries its
number), over ``--seconds`` after the smoothing window has filled. The goal: at least 8 readings/s on two cores
shared with the browser. The ratio printed is the browser's rate against what the server could deliver (1000 / its
median milliseconds per frame, measured in the same run): what the round trip and the browser cost.

    python -m bench.live_browser --json out.json [--weights-dir weights] [--seconds 10]

The test of the live tab (tests/test_app.py) drives the page with the same functions and asserts what arrives,
not how fast.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
from bench.timing import emit

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
GOAL_PER_S = 8.0

# records, in the browser, each reading as it arrives: its number, the followed face's fusion label, the server's
# milliseconds for the frame, and the browser's clock
WATCH_JS = """() => { window.__readings = [];
    const rate = document.querySelector('#live-rate'), label = document.querySelector('#live-fusion');
    let last = null;
    new MutationObserver(() => { const m = rate.innerText.match(/reading ([0-9]+)/);
        if (m && m[1] !== last) { last = m[1]; const ms = rate.innerText.match(/in ([0-9]+) ms/);
            window.__readings.push({n: +m[1], label: label.innerText, ms: ms ? +ms[1] : null, t: performance.now()});
        } }).observe(rate, {subtree: true, childList: true, characterData: true}); }"""


def fake_camera(photo: Path, path: Path, frames: int = 30, fps: int = 10, noise: float = 3.0) -> Path:
    """``photo`` at 640x480 with Gaussian sensor noise, as a YUV4MPEG2 file (what Chromium's fake camera plays)."""
    from fer_core.images import load_image

    still = cv2.resize(load_image(photo), (640, 480))
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            rgb = np.clip(still + rng.normal(0, noise, still.shape), 0, 255).astype(np.uint8)
            f.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def open_live(playwright, url: str, camera: Path, timeout_ms: float = 300_000):
    """A browser on the app's live tab, streaming ``camera``, once the first reading has arrived: (browser, page),
    the readings recorded from then on (:func:`readings`)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS + [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Live webcam").click()
    page.locator("#webcam").get_by_text("Click to Access Webcam").click()
    page.locator("#webcam button.capture-button").filter(has_text="Record").click()  # start streaming
    page.locator("#live-rate").get_by_text("reading").wait_for()
    page.evaluate(WATCH_JS)
    return browser, page


def readings(page) -> list[dict]:
    """The readings recorded so far: ``{"n", "label", "ms", "t"}`` each, in order of arrival."""
    return page.evaluate("() => window.__readings")


def measure(url: str, camera: Path, seconds: float, settle: int) -> dict:
    """Readings/s reaching the browser over ``seconds``, counted from the reading numbered ``settle`` on (the
    smoothing window filled)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = open_live(p, url, camera)
        while not any(r["n"] >= settle for r in readings(page)):
            page.wait_for_timeout(100)
        page.wait_for_timeout(seconds * 1000)
        got = [r for r in readings(page) if r["n"] >= settle]
        browser.close()
    span_s = (got[-1]["t"] - got[0]["t"]) / 1000
    per_s = (len(got) - 1) / span_s
    ms = float(np.median([r["ms"] for r in got if r["ms"] is not None]))
    return {"readings": len(got), "span_s": round(span_s, 2), "per_s": round(per_s, 2),
            "server_ms_median": round(ms, 1), "server_per_s_bound": round(1000 / ms, 2),
            "share_of_server_bound": round(per_s / (1000 / ms), 3), "goal_per_s": GOAL_PER_S,
            "meets_goal": per_s >= GOAL_PER_S, "labels": sorted({r["label"].split("\n")[0] for r in got})}


def main(argv=None):
    from demo.serve import start_app, stop_app

    ap = argparse.ArgumentParser(description="Live webcam readings per second that reach a headless browser.")
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--photo", default=str(ROOT / "demo/examples/grace_hopper.jpg"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--settle", type=int, default=6, help="count from this reading on (after the smoothing window)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        camera = fake_camera(Path(a.photo), Path(tmp) / "camera.y4m")
        proc, url = start_app({"HF_HUB_OFFLINE": "1", "FER_WEIGHTS_DIR": a.weights_dir})
        try:
            t0 = time.perf_counter()
            res = measure(url, camera, a.seconds, a.settle)
            res["wall_s"] = round(time.perf_counter() - t0, 1)
        finally:
            stop_app(proc)
    res["weights_dir"] = a.weights_dir
    print(f"{res['per_s']:.2f} readings/s reach the browser (goal {GOAL_PER_S:.0f}); the server reads a frame in "
          f"{res['server_ms_median']:.0f} ms (median): {res['share_of_server_bound']:.2f}x of its bound")
    emit(res, a.json)
    return res


if __name__ == "__main__":
    main()
