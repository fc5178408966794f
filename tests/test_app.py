"""The app end to end: launched on 127.0.0.1, called with gradio_client, driven in headless Chromium (a photo, the
examples, a phone-sized screen, the live webcam fed by a fake camera); a corpus of bad inputs gets clear messages
while the app keeps serving. Screenshots land in the test's tmp folder (FER_SCREENSHOTS=DIR keeps copies)."""
import io
import os
import shutil
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SHARED
from bench.live_browser import BROWSER_ARGS, CHROMIUM
from demo.serve import rss_mb, start_app, stop_app
from fer_core.images import ImageInputError, load_image

HOPPER = SHARED / "photos" / "grace_hopper.jpg"
ASTRONAUT = SHARED / "photos" / "astronaut.png"
MODELS = ("ddamfn", "resnet_dda", "fusion")
EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


@pytest.fixture(scope="module")
def app(tmp_path_factory, test_weights):
    log = open(tmp_path_factory.mktemp("log") / "app.log", "w+")
    try:
        proc, url = start_app({"FER_WEIGHTS_DIR": str(test_weights), "HF_HUB_OFFLINE": "1"}, log=log)
    except RuntimeError as e:
        pytest.fail(str(e))
    SERVED[url] = (proc, test_weights)
    yield url
    stop_app(proc)


SERVED = {}  # url -> (the app's process, its weights folder)


def test_the_app_holds_each_weight_at_most_twice(app):
    """After a request with maps, the server holds each weight twice at most (docs/memory.md): torch's float32
    parameters (the fusion shares its branches' modules) and ONNX Runtime's sessions, whose two files per branch
    (the parts before and after its Grad-CAM target: the maps run the first, a reading chains both) hold its
    tensors once between them; no bfloat16 copy beside them. Beyond what its imports alone take (measured in a
    process that imports the same modules), the RSS stays below those two copies and 500 MB: a guard against a
    third copy of the weights (about 200 MB), not a budget; what the rest is (about 300 MB on a 2-core machine: the
    allocator's arenas, the ONNX export's and self-check's freed pages, Gradio's state) is bench/app_memory.py's to
    measure."""
    import subprocess
    import sys

    from gradio_client import Client, handle_file

    from fer_core.predict import MODEL_KEYS, Analyzer

    proc, weights = SERVED[app]
    answer = Client(app, verbose=False).predict(handle_file(str(HOPPER)), False, "predicted class", True,
                                                api_name="/predict")
    assert answer["faces"] and "gradcam_png" in answer["faces"][0]["models"]["fusion"]
    an = Analyzer.from_pretrained({k: weights / k for k in MODEL_KEYS}, detector="haar")  # as the app loads them
    slots = an.slots
    distinct = {id(p): p for s in slots.values() for p in s.model.parameters()}
    assert sum(1 for s in slots.values() for _ in s.model.parameters()) > len(distinct)  # shared, not copied
    params_mb = sum(p.numel() for p in distinct.values()) * 4 / 2**20
    assert all(s.lean is None for s in slots.values()), an.maps_dtype  # no third copy for the maps
    files = {f for k in an.singles() for f in slots[k].onnx.paths}
    assert sorted(f.name.split("-")[0] for f in files) == ["prefix", "prefix", "suffix", "suffix"], files
    onnx_mb = sum(f.stat().st_size + f.with_name(f.name + ".data").stat().st_size for f in files) / 2**20
    branches_mb = sum(p.numel() for k in an.singles() for p in slots[k].model.parameters()) * 4 / 2**20
    # each branch's tensors once in its two files (BatchNorm folded in; DDAMFN's MixConv kernels zero-padded)
    assert 0.9 * branches_mb <= onnx_mb <= 1.1 * branches_mb, (onnx_mb, branches_mb)
    imports = subprocess.run(
        [sys.executable, "-c", "import torch, gradio, cv2, demo, fer_core.predict, onnxruntime\n"
         "from demo.serve import rss_mb; import os; print(rss_mb(os.getpid()))"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    base = float(imports.stdout.split()[-1])
    rss = rss_mb(proc.pid)
    print(f"app RSS {rss:.0f} MB = imports {base:.0f} MB + {rss - base:.0f} MB for {params_mb:.0f} MB of parameters "
          f"and {onnx_mb:.0f} MB of ONNX files")
    assert rss - base <= params_mb + onnx_mb + 500, (rss, base, params_mb, onnx_mb)


def test_gradio_client_gets_the_analysis_json_alone(app):
    from gradio_client import Client, handle_file

    client = Client(app, verbose=False)
    data = client.predict(handle_file(str(HOPPER)), api_name="/predict")
    assert isinstance(data, dict) and set(data) == {"image_size", "detector", "faces", "notes", "timings_ms"}
    assert len(data["faces"]) == 1 and data["detector"] == "yunet"  # the embedded YuNet, offline
    face = data["faces"][0]
    assert set(face["models"]) == set(MODELS)
    for m in face["models"].values():
        assert m["top"] in m["probs"] and abs(sum(m["probs"].values()) - 1) < 1e-3
    assert set(face["models"]["fusion"]["branch_weights"]) == {"ddamfn", "resnet_dda"}
    chosen = client.predict(handle_file(str(HOPPER)), False, "anger", api_name="/predict")
    assert chosen["faces"][0]["models"]["ddamfn"]["probs"] == face["models"]["ddamfn"]["probs"]
    endpoints = client.view_api(return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/predict"]  # the page's own events are not part of the API
    # no maps unless asked; asked, each model's two maps come as 8-bit grayscale PNGs
    assert not any(k.endswith("_png") for m in face["models"].values() for k in m)
    with_maps = client.predict(handle_file(str(HOPPER)), False, "predicted class", True, api_name="/predict")
    peaks = {}
    for key, m in with_maps["faces"][0]["models"].items():
        # the same reading, float32 both ways (the maps run the part after each target in torch, the readings in
        # ONNX Runtime): to the rounding of the fifth decimal
        assert m["top"] == face["models"][key]["top"]
        assert all(abs(m["probs"][c] - p) <= 2e-5 for c, p in face["models"][key]["probs"].items()), key
        for kind in ("gradcam_png", "attention_png"):
            img = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(m[kind]), np.uint8), cv2.IMREAD_UNCHANGED)
            assert img.shape == (224, 224) and img.dtype == np.uint8, (key, kind)
            peaks[key, kind] = int(img.max())
    # (an untrained model's map may be flat, hence zero once normalised: the test weights are untrained)
    assert any(peaks[k, "attention_png"] > 0 for k in MODELS) and any(peaks[k, "gradcam_png"] > 0 for k in MODELS)


def test_a_stopped_app_leaves_no_temporary_files(test_weights, tmp_path):
    """Stopped as a host stops it (SIGTERM), the app closes its server: the examples' cache, the pictures it served
    and what Gradio cached for the requests all go (the suite starts and stops apps many times; a Space restarts).
    What Gradio keeps is its own: the page's fixed files, under their content's hash, the same at every start."""
    from gradio_client import Client, handle_file

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log = open(tmp_path / "app.log", "w+")
    proc, url = start_app({"FER_WEIGHTS_DIR": str(test_weights), "HF_HUB_OFFLINE": "1", "TMPDIR": str(scratch)},
                          log=log)
    try:
        client = Client(url, verbose=False)
        assert client.predict(handle_file(str(HOPPER)), False, "", True, api_name="/predict")["faces"]
        served = {p.relative_to(scratch) for p in scratch.rglob("*") if p.is_file()}
        assert any(p.parts[0].startswith("fer_demo_") for p in served), served
    finally:
        stop_app(proc)
    assert proc.returncode == 0, log.seek(0) or log.read()[-2000:]
    left = {p.relative_to(scratch) for p in scratch.rglob("*") if p.is_file()}
    assert not [p for p in left if p.parts[0].startswith("fer_")], left
    assert len(left) < len(served) and not [p for p in left if p.parts[0] == "gradio" and p not in served]
    kept = {p for p in left if p.parts[0] == "gradio"}
    proc, url = start_app({"FER_WEIGHTS_DIR": str(test_weights), "HF_HUB_OFFLINE": "1", "TMPDIR": str(scratch)})
    stop_app(proc)
    assert {p.relative_to(scratch) for p in scratch.rglob("*") if p.is_file() and "gradio" in p.parts} == kept


def test_every_analysis_event_shares_one_concurrency_group_sized_to_the_machine(test_weights, monkeypatch):
    """The page's events that run the models and the API share one group, so that the queue sees every analysis
    that competes for the cores; its size is the machine's (one on two cores at two threads each)."""
    monkeypatch.setenv("FER_WEIGHTS_DIR", str(test_weights))
    from demo.ui import analysis_concurrency, build_demo
    from fer_core.predict import Analyzer

    analyzer = Analyzer.from_pretrained({k: test_weights / k for k in MODELS}, detector="haar")
    demo = build_demo(analyzer, concurrency=1)
    running = [d for d in demo.fns.values() if d.fn is not None and d.name not in ("lambda", "<lambda>")]
    groups = {d.name: (d.concurrency_id, d.concurrency_limit) for d in running}
    for name in ("analyse", "pick", "change_mode", "read_frame", "analyse_clip", "predict", "load_example_output"):
        assert groups[name] == ("analysis", 1), (name, groups)
    monkeypatch.delenv("FER_CONCURRENCY", raising=False)
    import torch
    expected = max(1, (os.cpu_count() or 1) // torch.get_num_threads())
    assert analysis_concurrency() == (torch.cuda.device_count() if torch.cuda.is_available() else expected)
    monkeypatch.setenv("FER_CONCURRENCY", "3")
    assert analysis_concurrency() == 3


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
            data = client.predict(handle_file(str(p)), api_name="/predict")
            if name == "thirty_faces.png":
                assert len(data["faces"]) == 10 and any("showing the 10 largest" in n for n in data["notes"])
            elif name == "tiny.png":  # 20x20: no face of at least 20 px; the user is told so
                assert data["faces"] == [] and "no face found" in " ".join(data["notes"])
            elif name == "rgba.png":  # composited on white, the face is still there
                assert len(data["faces"]) == 1 and data["image_size"] == [512, 600]
            else:
                assert len(data["faces"]) >= 1, name
        else:
            with pytest.raises(Exception) as err:
                client.predict(handle_file(str(p)), api_name="/predict")
            assert EXPECT[name] in str(err.value), (name, str(err.value))
    # still serving
    assert len(client.predict(handle_file(str(HOPPER)), api_name="/predict")["faces"]) == 1


# -- the page in a real browser ----------------------------------------------------------------------------------

# Hang guards only: no wait below is a speed budget. A step waits up to GUARD_MS (a slow or busy machine takes
# longer, not forever); a long analysis is waited for while its progress moves (_wait_while_advancing).
GUARD_MS = 300_000
STALL_S = 300


def _page(browser, **kw):
    page = browser.new_page(**kw)
    page.set_default_timeout(GUARD_MS)
    return page


@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("FER_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _shot(page, path):
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("FER_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, os.path.join(keep, path.name))
    return cv2.imread(str(path))


def _analyse_upload(page, app, photo):
    page.goto(app, wait_until="load")
    page.get_by_role("button", name="Analyse", exact=True).wait_for()
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.locator("#photo-input img").first.wait_for()  # the upload is done
    page.get_by_role("button", name="Analyse", exact=True).click()
    page.locator("#compact-cam-fusion img").first.wait_for()  # the compact view is filled


def _open_full_columns(page):
    page.locator("#full-columns").get_by_text("Each model in full").click()
    page.locator("#branch-weights").get_by_text("ResNet+DDA").first.wait_for()


def _natural_sizes(page, selector):
    return page.eval_on_selector_all(f"{selector} img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])")


def _maps_named_beneath(page) -> list[dict]:
    """Each compact map carries its name directly beneath it, within its width (so it stays true however the maps
    wrap), and the note under them names no side; returns the maps' boxes."""
    boxes = []
    for key in MODELS:
        for kind, name in (("cam", "Grad-CAM"), ("att", "attention")):
            m = page.locator(f"#compact-{kind}-{key}").bounding_box()
            label = page.locator(f"#compact-{kind}-name-{key}")
            n = label.bounding_box()
            assert name in label.inner_text(), (key, kind, label.inner_text())
            assert 0 <= n["y"] - (m["y"] + m["height"]) < 16, (key, kind, m, n)  # just below its own map
            assert m["x"] - 1 <= n["x"] and n["x"] + n["width"] <= m["x"] + m["width"] + 1, (key, kind, m, n)
            boxes.append(m)
    note = page.locator("#compact-note").inner_text()
    assert not any(side in note for side in ("left", "right", "above", "below")), note
    return boxes


def test_browser_photo_shows_readable_maps_for_each_model(app, chromium, tmp_path):
    browser = chromium.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
    page = _page(browser, viewport={"width": 1400, "height": 1000})
    _analyse_upload(page, app, HOPPER)
    # the compact view: each model's top three and its two maps, side by side
    cards = [page.locator(f"#compact-label-{k}").bounding_box() for k in MODELS]
    assert max(c["y"] for c in cards) - min(c["y"] for c in cards) < 40, cards
    for key in MODELS:
        assert any(e in page.locator(f"#compact-label-{key}").inner_text() for e in EMOTIONS)
    boxes = _maps_named_beneath(page)
    assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 2, boxes  # on a wide screen, one row of six
    downloads = page.locator("#downloads").inner_text()
    assert ".json" in downloads and ".csv" in downloads and ".png" in downloads, downloads
    _open_full_columns(page)
    for key in MODELS:
        text = page.locator(f"#label-{key}").inner_text()
        assert sum(e in text for e in EMOTIONS) == 8, (key, text)
        for kind in ("cam", "att", "seen"):
            page.locator(f"#{kind}-{key} img").first.wait_for()
            (w, h), = _natural_sizes(page, f"#{kind}-{key}")
            assert w >= 224 and h >= 224, (key, kind, w, h)  # readable, not a thumbnail
            shown = page.locator(f"#{kind}-{key} img").first.bounding_box()
            assert shown["width"] >= 200, (key, kind, shown)
    # the three models' maps sit side by side, level with one another
    tops = [page.locator(f"#cam-{k}").bounding_box()["y"] for k in MODELS]
    assert max(tops) - min(tops) < 40, tops
    table = page.locator("#faces-table").inner_text()
    assert "DDAMFN" in table and "Fusion" in table and "(0." in table
    assert not page.locator("#about table").first.is_visible()  # collapsed until asked for
    assert not page.get_by_label("Analysis", exact=True).is_visible()  # the JSON sits in a collapsed accordion
    # a map alone, without the face
    over = page.locator("#cam-ddamfn img").first.get_attribute("src")
    page.locator("#map-mode").get_by_text("map alone").click()
    page.wait_for_function(f"() => document.querySelector('#cam-ddamfn img').src !== {over!r}")
    page.locator("#about").get_by_text("About the models").click()
    page.locator("#about").get_by_text("Recall per class").wait_for()
    assert "Limits" in page.locator("#about").inner_text()
    shot = _shot(page, tmp_path / "desktop.png")
    assert shot.shape[1] == 1400 and shot.std() > 20  # a real page, not a blank one
    browser.close()


def test_browser_pick_a_face_from_the_table(app, chromium, tmp_path):
    """Two people in one photo: both are in the table, and clicking the second row shows that face below."""
    a, b = (cv2.imread(str(p)) for p in (HOPPER, ASTRONAUT))
    h = 400
    a, b = (cv2.resize(x, (round(x.shape[1] * h / x.shape[0]), h)) for x in (a, b))
    pair = tmp_path / "two_people.png"
    cv2.imwrite(str(pair), np.hstack([a, b]))
    browser = chromium.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
    page = _page(browser, viewport={"width": 1400, "height": 1000})
    _analyse_upload(page, app, pair)
    _open_full_columns(page)
    rows = page.locator("#faces-table [role=row].virtual-row")  # Gradio's Dataframe draws its rows virtually
    rows.nth(1).wait_for()
    assert rows.count() == 2, page.locator("#faces-table").inner_text()
    first = page.locator("#seen-ddamfn img").first.get_attribute("src")
    rows.nth(1).locator("[role=gridcell], td").first.click()
    # images are named by their content: another src is another face
    page.wait_for_function(f"() => document.querySelector('#seen-ddamfn img').src !== {first!r}")
    page.wait_for_function("() => [...document.querySelectorAll('#col-ddamfn img')].every(i => i.complete)")
    assert page.locator("#agreement").inner_text().startswith("Face 2")
    _shot(page, tmp_path / "two_faces.png")
    browser.close()


def test_browser_phone_shows_the_three_readings_side_by_side_and_the_full_columns_on_demand(app, chromium, tmp_path):
    browser = chromium.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
    page = _page(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                            has_touch=True)
    _analyse_upload(page, app, ASTRONAUT)
    # compact: the three models' readings and maps side by side, within the screen's width and one screen high
    cards = [page.locator(f"#compact-label-{k}").bounding_box() for k in MODELS]
    maps = [page.locator(f"#compact-{kind}-{k}").bounding_box() for k in MODELS for kind in ("cam", "att")]
    assert max(c["y"] for c in cards) - min(c["y"] for c in cards) < 40, cards
    for b in cards + maps:
        assert b["x"] >= 0 and b["x"] + b["width"] <= 391, b
    strip = page.locator("#compact").bounding_box()
    assert strip["height"] <= 844, strip
    # the maps stand in two rows (each model's Grad-CAM above its own attention), each named where it stands
    cam, att = (page.locator(f"#compact-{kind}-ddamfn").bounding_box() for kind in ("cam", "att"))
    assert att["y"] >= cam["y"] + cam["height"], (cam, att)
    _maps_named_beneath(page)
    compact_page = page.evaluate("() => document.documentElement.scrollHeight")
    _shot(page, tmp_path / "phone_compact.png")
    # each model's top label and its probability lines fit within its card (no word cut at the card's edge)
    fits = page.evaluate("""() => [...document.querySelectorAll('[id^=compact-label-] .output-class, '
        + '[id^=compact-label-] .confidence-set')].map(e => { const r = document.createRange(); r.selectNodeContents(e);
        const box = e.closest('[id^=compact-label-]').getBoundingClientRect(), text = r.getBoundingClientRect();
        return text.left >= box.left - 1 && text.right <= box.right + 1 ? '' : e.innerText; })""")
    assert len(fits) >= 6 and not any(fits), fits
    _open_full_columns(page)
    boxes = [page.locator(f"#col-{k}").bounding_box() for k in MODELS]
    for upper, lower in zip(boxes, boxes[1:]):
        assert lower["y"] >= upper["y"] + upper["height"] - 1, boxes  # one below the other
    for b in boxes:
        assert b["x"] >= 0 and b["x"] + b["width"] <= 391, b  # nothing runs off the screen
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= 392, overflow
    full_page = page.evaluate("() => document.documentElement.scrollHeight")
    print(f"phone: {compact_page / 844:.1f} screens compact, {full_page / 844:.1f} with the full columns")
    assert compact_page < full_page - 2 * 844
    shot = _shot(page, tmp_path / "phone.png")
    assert shot.shape[1] == 780
    browser.close()


def test_browser_example_is_analysed_and_its_faces_can_be_revisited(app, chromium, tmp_path):
    browser = chromium.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
    page = _page(browser, viewport={"width": 1400, "height": 1000})
    page.goto(app, wait_until="load")
    page.get_by_role("button", name="Analyse", exact=True).wait_for()
    page.locator(".gallery-item, [data-testid='examples'] button, table.examples-table tr").first.click()
    page.locator("#compact-att-fusion img").first.wait_for()
    page.locator("#agreement").get_by_text("Face 1").wait_for()
    over = page.locator("#compact-att-fusion img").first.get_attribute("src")
    page.locator("#map-mode").get_by_text("map alone").click()  # needs the analysis kept for this visitor
    page.wait_for_function(f"() => document.querySelector('#compact-att-fusion img').src !== {over!r}")
    browser.close()


def _wait_while_advancing(page, done, progress, what: str, stall_s: float = STALL_S):
    """Wait until ``done()`` holds for as long as ``progress()`` keeps changing: a slow or busy machine only takes
    longer; the wait fails when nothing has moved for ``stall_s`` (a hang), never on a total budget."""
    last, since = progress(), time.monotonic()
    while not done():
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        assert time.monotonic() - since < stall_s, f"{what}: nothing moved for {stall_s:.0f} s (last: {last!r})"
        page.wait_for_timeout(200)


def test_browser_live_webcam_with_a_fake_camera(app, chromium, tmp_path):
    """A still face before the fake camera, with sensor noise: numbered readings keep reaching the browser (counted
    in the browser; the page shows their rate) and, once the smoothing window has filled, the followed face's label
    does not flicker. How many per second is bench/live_browser.py's to measure."""
    from bench.live_browser import fake_camera, open_live, readings

    browser, page = open_live(chromium, app, fake_camera(HOPPER, tmp_path / "camera.y4m"), timeout_ms=GUARD_MS)
    window = int(page.locator("#live-window input[type=number]").input_value())  # readings averaged

    def numbers():
        return [r["n"] for r in readings(page)]

    _wait_while_advancing(page, lambda: sum(n > window for n in numbers()) >= 20, lambda: len(numbers()),
                          "live readings")
    got = readings(page)
    ns = [r["n"] for r in got]
    assert ns == sorted(ns) and len(set(ns)) == len(ns), ns  # each reading once, in order
    page.locator("#live-delivered").get_by_text("readings/s reach this page").wait_for()
    settled = [r for r in got if r["n"] > window]
    span_s = (settled[-1]["t"] - settled[0]["t"]) / 1000
    print(f"live: {len(settled)} readings up to number {ns[-1]} in {span_s:.1f} s = "
          f"{(len(settled) - 1) / span_s:.1f} per second in the browser; the page says "
          f"{page.locator('#live-delivered').inner_text()!r}; the server read them in "
          f"{np.median([r['ms'] for r in settled if r['ms'] is not None]):.0f} ms (median)")
    # the label's heading is its top class: the first expression named in its text
    tops = [min((t.find(e), e) for e in EMOTIONS if e in t)[1] if any(e in t for e in EMOTIONS) else None
            for t in (r["label"] for r in settled)]
    assert len(set(tops)) == 1 and tops[0] is not None, tops  # one label for a still face: no flicker
    _shot(page, tmp_path / "live.png")
    browser.close()


def test_browser_video_tab_reads_a_clip_face_by_face(app, chromium, tmp_path):
    """A short clip made from the two example photos: analysed with a progress bar, each face followed, a
    timeline per face, the frame at a moment, and the readings to take away."""
    from test_video import _clip

    clip = _clip(tmp_path / "two_people.webm", frames=12)
    browser = chromium.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
    page = _page(browser, viewport={"width": 1400, "height": 1100})
    page.goto(app, wait_until="load")
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.locator("#video-input video").first.wait_for()
    page.locator("#video-every input[type=number]").fill("3")
    page.locator("#video-run").click()
    # however long the clip takes, it is waited for while its progress bar moves ("frame 3 of 12")
    _wait_while_advancing(page, lambda: "frames read" in page.locator("#video-summary").inner_text(),
                          lambda: page.evaluate("() => document.body.innerText.match(/frame [0-9]+/g)"), "the clip")
    summary = page.locator("#video-summary").inner_text()
    assert "4 frames read" in summary and "2 faces followed" in summary, summary
    page.locator("#video-timeline img").first.wait_for()  # the matplotlib timeline
    page.locator("#video-frame img").first.wait_for()
    page.wait_for_function("() => ['.csv', '.json'].every(x => "
                           "document.querySelector('#video-downloads').innerText.includes(x))")
    downloads = page.locator("#video-downloads").inner_text()
    assert ".csv" in downloads and ".json" in downloads, downloads
    # the clip plays in the preview (its <video> reports no error)
    assert page.evaluate("() => document.querySelector('#video-input video').error") is None
    shot = _shot(page, tmp_path / "video.png")
    assert shot.std() > 20
    browser.close()
