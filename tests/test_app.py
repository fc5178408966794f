"""The app end to end: launched on 127.0.0.1, called with gradio_client, driven in headless Chromium; a corpus
of bad inputs gets clear messages while the app keeps serving."""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SHARED
from fer_core.images import ImageInputError, load_image
from fixtures import make_weights

HOPPER = SHARED / "photos" / "grace_hopper.jpg"
YUNET = SHARED / "models" / "face_detection_yunet.onnx"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    weights = make_weights(tmp_path_factory.mktemp("weights"))
    port = _free_port()
    env = dict(os.environ, FER_WEIGHTS_DIR=str(weights), HF_HUB_OFFLINE="1", FER_YUNET_PATH=str(YUNET),
               GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1")
    log = open(tmp_path_factory.mktemp("log") / "app.log", "w+")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    else:
        proc.kill()
    if proc.poll() is not None:
        log.seek(0)
        pytest.fail("the app did not start:\n" + log.read()[-3000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def _analysis(outputs):
    return next(o for o in outputs if isinstance(o, dict) and "faces" in o)


def test_gradio_client_gets_data(app):
    from gradio_client import Client, handle_file

    client = Client(app, verbose=False)
    out = client.predict(handle_file(str(HOPPER)), api_name="/predict")
    data = _analysis(out)
    assert len(data["faces"]) == 1 and data["detector"] == "yunet"
    face = data["faces"][0]
    assert set(face["models"]) == {"ddamfn", "resnet_dda", "fusion"}
    for m in face["models"].values():
        assert m["top"] in m["probs"] and abs(sum(m["probs"].values()) - 1) < 1e-3
    assert set(face["models"]["fusion"]["branch_weights"]) == {"ddamfn", "resnet_dda"}


def _bad_corpus(tmp):
    """Files users send: each is either analysed or refused with a clear message."""
    rgb = np.asarray(Image.open(HOPPER).convert("RGB"))
    files = {}

    def save(name, img, **kw):
        p = tmp / name
        img.save(p, **kw)
        files[name] = p

    (tmp / "not_image.jpg").write_text("hello, I am text")
    files["not_image.jpg"] = tmp / "not_image.jpg"
    (tmp / "empty.png").write_bytes(b"")
    files["empty.png"] = tmp / "empty.png"
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    (tmp / "truncated.jpg").write_bytes(buf.getvalue()[:3000])
    files["truncated.jpg"] = tmp / "truncated.jpg"
    save("bomb.png", Image.new("L", (9000, 5000)), optimize=True)  # 45 MP of zeros, a few kB on disk
    save("sixteen_bit.png", Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(200)
    save("rgba.png", rgba)
    save("gray.png", Image.fromarray(rgb).convert("L"))
    rotated = Image.fromarray(rgb).rotate(90, expand=True)  # stored sideways, EXIF says rotate back
    exif = Image.Exif()
    exif[274] = 8
    save("exif_rotated.jpg", rotated, exif=exif)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(tmp / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["animated.gif"] = tmp / "animated.gif"
    save("tiny.png", Image.fromarray(rgb).resize((20, 20)))
    face = Image.fromarray(rgb[110:340, 170:370]).resize((100, 115))
    grid = Image.new("RGB", (6 * 110, 5 * 125), (200, 200, 200))
    for i in range(30):
        grid.paste(face, (5 + 110 * (i % 6), 5 + 125 * (i // 6)))
    save("thirty_faces.png", grid)
    return files


EXPECT = {  # file -> None (analysed) or a fragment of the message
    "not_image.jpg": "not an image", "empty.png": "empty (0 bytes)", "truncated.jpg": "damaged or truncated",
    "bomb.png": "the limit is 40 MP", "sixteen_bit.png": None, "cmyk.jpg": None, "rgba.png": None,
    "gray.png": None, "exif_rotated.jpg": None, "animated.gif": None, "tiny.png": None,
    "thirty_faces.png": None,
}


def test_bad_inputs_load_or_fail_clearly(tmp_path):
    files = _bad_corpus(tmp_path)
    for name, p in files.items():
        if EXPECT[name] is None:
            img = load_image(p)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        else:
            with pytest.raises(ImageInputError, match=EXPECT[name].replace("(", r"\(").replace(")", r"\)")):
                load_image(p)
    with pytest.raises(ImageInputError, match="at least 16x16"):
        load_image(np.zeros((10, 10, 3), np.uint8))
    upright = load_image(files["exif_rotated.jpg"])
    assert upright.shape[:2] == (600, 512)  # turned back by its EXIF orientation
    assert load_image(files["animated.gif"]).mean() == pytest.approx(load_image(HOPPER).mean(), rel=0.05)


def test_app_survives_bad_inputs(app, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app, verbose=False)
    files = _bad_corpus(tmp_path)
    for name, p in files.items():
        if EXPECT[name] is None:
            data = _analysis(client.predict(handle_file(str(p)), api_name="/predict"))
            if name == "thirty_faces.png":
                assert len(data["faces"]) == 10 and any("showing the 10 largest" in n for n in data["notes"])
            elif name == "tiny.png":  # 20x20: no face of at least 20 px; the user is told so
                assert data["faces"] == [] and "no face found" in " ".join(data["notes"])
            elif name != "rgba.png":
                assert len(data["faces"]) >= 1, name
        else:
            with pytest.raises(Exception) as err:
                client.predict(handle_file(str(p)), api_name="/predict")
            assert EXPECT[name] in str(err.value), (name, str(err.value))
    # still serving
    assert len(_analysis(client.predict(handle_file(str(HOPPER)), api_name="/predict"))["faces"]) == 1


def test_browser_upload_shows_three_columns(app, tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("FER_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])  # playwright gives it a fresh profile
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(app, wait_until="load")
        page.get_by_role("button", name="Analyse").wait_for(timeout=60_000)
        page.locator("input[type=file]").first.set_input_files(str(HOPPER))
        page.locator("#photo-input img").first.wait_for(timeout=30_000)  # the upload is done
        page.get_by_role("button", name="Analyse").click()
        page.locator("#branch-weights").get_by_text("How much each branch counted").wait_for(timeout=90_000)
        labels = {k: page.locator(f"#label-{k}").inner_text() for k in ("ddamfn", "resnet_dda", "fusion")}
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        browser.close()
    emotions = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    for key, text in labels.items():
        assert sum(e in text for e in emotions) == 8, (key, text)
    assert (tmp_path / "app.png").stat().st_size > 50_000
