"""The README's picture of the page: the app started on a free port with the shipped weights, the example photo
analysed in headless Chromium, the page down to the three models' maps saved as docs/screenshot.png.

    python -m docs.screenshot                      # rewrite docs/screenshot.png
    python -m docs.screenshot --out /tmp/page.png  # elsewhere

Needs the dev requirements (Playwright) and Debian's Chromium at /usr/bin/chromium (``--chromium`` for another).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from demo.serve import ROOT, start_app, stop_app

PHOTO = ROOT / "demo" / "examples" / "grace_hopper.jpg"
OUT = ROOT / "docs" / "screenshot.png"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}


def analyse(page, url: str, photo: Path) -> None:
    """Upload ``photo`` and press Analyse; return once the compact view holds the fusion's Grad-CAM."""
    page.goto(url, wait_until="load")
    page.get_by_role("button", name="Analyse", exact=True).wait_for(timeout=120_000)
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.locator("#photo-input img").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Analyse", exact=True).click()
    page.locator("#compact-cam-fusion img").first.wait_for(timeout=180_000)
    page.wait_for_function("() => [...document.querySelectorAll('#compact img, #annotated img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=60_000)


def shoot(out: Path, photo: Path = PHOTO, chromium: str = CHROMIUM) -> Path:
    from playwright.sync_api import sync_playwright

    env = {"HF_HUB_OFFLINE": "1", "FER_WEIGHTS_SOURCE": "local"}  # the shipped weights, no network
    with tempfile.TemporaryFile("w+") as log:
        proc, url = start_app(env, log=log)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                analyse(page, url, photo)
                boxes = [page.locator(s).first.bounding_box() for s in ("#compact", "#compact-note")]
                height = int(max(b["y"] + b["height"] for b in boxes if b) + 24)
                page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height},
                                full_page=True)
                browser.close()
        finally:
            stop_app(proc)
    return compact(out)


def compact(path: Path) -> Path:
    """The PNG in 256 colours (a third of its size; the page is mostly flat colour)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Take the README's screenshot of the page.")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--chromium", default=CHROMIUM)
    a = ap.parse_args(argv)
    print(f"wrote {shoot(a.out, a.photo, a.chromium)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
