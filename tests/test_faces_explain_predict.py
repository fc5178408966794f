"""Faces, explanations and the predict pipeline on the two public-domain photos and the YuNet file."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import ASTRONAUT, HOPPER, ROOT, YUNET
from fer_core import create_model
from fer_core.explain import CAM_VARIANTS, gradcam_from_leaves, gradcam_with_details, own_attention, resize_maps
from fer_core.faces import Face, HaarDetector, YuNetDetector, crop_face, detect_faces, make_detector
from fer_core.images import load_image
from fer_core.preprocess import CropSpec
from fer_core.predict import Analyzer
from fer_core.results import ModelResult, agreement
from fer_core.weights import load_weights
from fixtures import make_weights



@pytest.fixture(scope="module")
def weights(module_tmp):
    return make_weights(module_tmp, tta_flip=True)


@pytest.fixture(scope="module")
def analyzer(weights):
    # float32 maps throughout, so that they can be held to the grad-cam package's to the last digits (the bfloat16
    # part of the maps on CPUs that have it: tests/test_runtime.py)
    return Analyzer.from_pretrained({k: weights / k for k in ("ddamfn", "resnet_dda", "fusion")},
                                    detector=YuNetDetector(YUNET), maps_dtype="float32")


def test_yunet_and_haar_find_the_faces():
    rgb = load_image(HOPPER)
    for det in (YuNetDetector(YUNET), HaarDetector()):
        d = detect_faces(rgb, det)
        assert len(d.faces) == 1 and d.detector == det.name
        x, y, w, h = d.faces[0].box
        assert 150 < x + w / 2 < 330 and 150 < y + h / 2 < 330  # her face, not the background
    yd = detect_faces(load_image(ASTRONAUT), YuNetDetector(YUNET))
    assert len(yd.faces) == 1 and yd.faces[0].landmarks.shape == (5, 2)


def test_multi_face_cap_order_and_whole_image():
    rgb = load_image(HOPPER)
    face = cv2.resize(rgb[110:340, 170:370], (100, 115))
    canvas = np.full((260, 1200, 3), 200, np.uint8)
    for i in range(12):
        canvas[10 + 20 * (i % 2):125 + 20 * (i % 2), 10 + 98 * i:110 + 98 * i][:] = face[:, :100] if i < 12 else 0
    d = detect_faces(canvas, YuNetDetector(YUNET), max_faces=10)
    assert d.found >= 11 and d.capped and len(d.faces) == 10 and "showing the 10 largest" in d.notes[0]
    xs = [f.box[0] for f in d.faces]
    assert xs == sorted(xs)
    blank = np.full((200, 300, 3), 128, np.uint8)
    assert detect_faces(blank, HaarDetector()).faces == []
    whole = detect_faces(blank, HaarDetector(), whole_image_if_none=True)
    assert whole.faces[0].box == (0.0, 0.0, 300.0, 200.0) and whole.detector == "whole image"


def test_auto_detector_falls_back_to_haar_with_a_note(monkeypatch, offline_env):
    monkeypatch.delenv("FER_YUNET_PATH", raising=False)
    monkeypatch.setattr("fer_core.faces.YUNET_EMBEDDED", offline_env / "no_embedded_yunet.onnx")
    det, note = make_detector("auto")
    assert det.name == "haar" and "YuNet unavailable" in note
    monkeypatch.setenv("FER_YUNET_PATH", str(YUNET))
    assert make_detector("auto")[0].name == "yunet"


def test_yunet_through_the_hub_loader(hub, monkeypatch, tmp_path):
    from fer_core.faces import YUNET_ENTRY, YUNET_FILE, yunet_path

    hub.put(YUNET_ENTRY.hf_hub_id, YUNET_ENTRY.revision, YUNET_FILE, YUNET.read_bytes())
    monkeypatch.delenv("FER_YUNET_PATH", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("fer_core.faces.YUNET_EMBEDDED", tmp_path / "missing.onnx")  # no embedded copy: the Hub
    path = yunet_path()
    assert path.read_bytes() == YUNET.read_bytes() and hub.gets(YUNET_FILE) == 1
    assert make_detector("yunet")[0].name == "yunet"


def test_embedded_yunet_is_the_offline_default_and_its_sha256_is_checked(monkeypatch, tmp_path):
    from fer_core.faces import YUNET_EMBEDDED, YUNET_SHA256, yunet_path
    from fer_core.weights import sha256_file

    monkeypatch.delenv("FER_YUNET_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("FER_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("FER_WEIGHTS_DIR", str(tmp_path / "elsewhere"))  # models elsewhere: YuNet is still found
    path = yunet_path()
    assert path == ROOT / "weights" / "yunet" / "face_detection_yunet.onnx" == YUNET_EMBEDDED
    assert sha256_file(path) == YUNET_SHA256
    det, note = make_detector("auto")
    assert det.name == "yunet" and note == ""
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(path.read_bytes()[:-10])
    monkeypatch.setattr("fer_core.faces.YUNET_EMBEDDED", damaged)
    det, note = make_detector("auto")  # reported on the page, not hidden
    assert det.name == "haar" and "sha256 is not the embedded YuNet" in note


def test_crop_levels_the_eyes_and_matches_the_config():
    rgb = load_image(HOPPER)
    face = detect_faces(rgb, YuNetDetector(YUNET)).faces[0]
    g = crop_face(rgb, face, CropSpec(box_scale=1.15, align="eyes", size=48))
    c = crop_face(rgb, face, CropSpec(box_scale=1.15, align="eyes", size=112, grayscale=False))
    assert g.shape == (48, 48) and g.dtype == np.uint8 and c.shape == (112, 112, 3)
    # the vertical offset moves the crop down by that fraction of the box height
    x, y, w, h = face.box
    down = crop_face(rgb, face, CropSpec(box_scale=1.15, align="none", y_offset=0.25, size=48))
    shifted = Face((x, y + 0.25 * h, w, h), 1.0, None)
    assert np.array_equal(down, crop_face(rgb, shifted, CropSpec(box_scale=1.15, align="none", size=48)))
    # rotate the photo by 20 degrees: the aligned crop is (nearly) the same as from the upright photo
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    rot = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    rface = detect_faces(rot, YuNetDetector(YUNET)).faces[0]
    (rx, ry), (lx, ly) = rface.landmarks[:2]
    assert abs(np.degrees(np.arctan2(ly - ry, lx - rx)) + 20) < 6
    aligned = crop_face(rot, rface, CropSpec(box_scale=1.15, align="eyes", size=48))
    unaligned = crop_face(rot, Face(rface.box, 1.0, None), CropSpec(box_scale=1.15, align="eyes", size=48))
    err = lambda a: np.abs(a.astype(float) - g.astype(float)).mean()  # noqa: E731
    assert err(aligned) < 0.8 * err(unaligned)  # the box itself also changes with the rotation


@pytest.mark.parametrize("name,size", [("ddamfn", 64), ("resnet18_dda", 64), ("resnet18_dda", 112)])
def test_cheap_gradcam_equals_full_gradcam_and_keeps_state(name, size):
    """For every variant the project knows (the page's, CAM, among them): the cheap path (the rest of the network
    from a detached copy of the target's output) gives the grad-cam package's own class's maps. (The page's maps
    path, the formula on activations and gradients already taken, is held to it in
    test_gradcam_explains_the_label_shown and test_the_shipped_weights_maps_of_the_examples_are_never_blank.)"""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    kwargs = {"dda_stages": (3, 4), "dda_width": 64, "c_mid": 64} if name != "ddamfn" else {"input_size": size}
    model = create_model(name, **kwargs)
    model.train()
    model.fc.weight.requires_grad_(False)  # an unusual flag, to see that it is restored
    x = torch.randn(2, 3, size, size)
    for variant, (package_class, _) in CAM_VARIANTS.items():
        model.train()
        cams, det, _ = gradcam_with_details(model, x, classes=[1, 3], variant=variant)
        assert model.training and not model.fc.weight.requires_grad and model.fc.bias.requires_grad
        assert all(p.grad is None for p in model.parameters())
        model.eval()
        with package_class(model=model, target_layers=model.gradcam_layers(size)) as cam:  # stage 3 for ResNet at 64
            full = cam(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(3)])
        assert cams.shape == (2, size, size) and np.allclose(cams, np.clip(full, 0, 1), atol=1e-4), variant
    with torch.no_grad():
        assert torch.allclose(det["logits"], model(x), atol=1e-5)
    att = own_attention(det["attention"], 112)
    assert att.shape == (2, 112, 112) and att.min() >= 0 and att.max() <= 1


def test_own_attention_leaves_out_masks_coarser_than_4x4():
    torch.manual_seed(0)
    fine, coarse = torch.rand(2, 4, 4), torch.rand(2, 2, 2)
    both = own_attention({"stage3": fine, "stage4": coarse}, 64)
    assert np.array_equal(both, own_attention({"stage3": fine}, 64))
    assert not np.array_equal(both, own_attention({"stage4": coarse}, 64))
    assert own_attention({"stage4": coarse}, 64).shape == (2, 64, 64)  # nothing finer: the coarse mask is shown


def test_analyze_photo(analyzer):
    r = analyzer.analyze(HOPPER, maps=True)
    assert r.detector == "yunet" and len(r.faces) == 1 and analyzer.sources == {"fusion": ("ddamfn", "resnet_dda")}
    f = r.faces[0]
    assert set(f.models) == {"ddamfn", "resnet_dda", "fusion"}
    for key, m in f.models.items():
        assert abs(sum(m.probs.values()) - 1) < 1e-3 and m.top == max(m.probs, key=m.probs.get)
        assert list(m.probs.values()) == sorted(m.probs.values(), reverse=True)
        for kind in ("gradcam", "attention"):
            heat = getattr(m, kind)
            assert heat.shape == (224, 224) and 0 <= heat.min() and heat.max() <= 1, (key, kind)
        size = analyzer.slots[key].size
        assert m.input_image.shape == (size, size) and m.input_image.dtype == np.uint8  # grayscale, as the model saw
    assert [analyzer.slots[k].size for k in ("ddamfn", "resnet_dda", "fusion")] == [64, 80, 80]  # as shipped
    w = f.models["fusion"].branch_weights
    assert set(w) == {"ddamfn", "resnet_dda"} and abs(w["ddamfn"] + w["resnet_dda"] - 1) < 1e-3
    assert set(r.timings_ms) >= {"decode", "detect", "crop", "ddamfn", "resnet_dda", "fusion", "total"}
    assert analyzer.analyze(HOPPER).faces[0].models["ddamfn"].gradcam is None  # maps only when asked
    assert f.agreement["text"]
    j = json.loads(json.dumps(r.to_json()))  # plain JSON, no arrays
    assert j["faces"][0]["models"]["fusion"]["branch_weights"] == w and "gradcam" not in j["faces"][0]["models"]["ddamfn"]
    assert j["image_size"] == [r.image.shape[1], r.image.shape[0]] and j["faces"][0]["agreement"] == f.agreement


def test_what_the_model_saw_is_its_input_tensor(analyzer):
    """The input image shown is the model's actual input (the same resize), not a second rendering of the crop."""
    r = analyzer.analyze(HOPPER, maps=False)
    slot = analyzer.slots["ddamfn"]
    face = detect_faces(r.image, analyzer.detector).faces[0]
    x = slot.batch([crop_face(r.image, face, slot.data.crop)])
    seen = r.faces[0].models["ddamfn"].input_image
    back = (torch.from_numpy(seen).float() / 255 - slot.data.mean[0]) / slot.data.std[0]
    assert torch.allclose(back, x[0, 0], atol=0.5 / 255 / min(slot.data.std))


def test_the_fusion_is_served_as_evaluated(analyzer):
    """The fused logits from the branches' reused passes equal the fusion model's own forward on its transform's
    input (each branch fed its own size from the same crop, as in training and evaluation), test-time flip
    included; and each branch slot is fed exactly what the fusion gives that branch."""
    from fer_core.preprocess import resolve_data_config
    from fer_core.train.evaluation import predict_logits

    r = analyzer.analyze(ASTRONAUT, maps=False)
    slot = analyzer.slots["fusion"]
    face = detect_faces(r.image, analyzer.detector).faces[0]
    g = crop_face(r.image, face, slot.data.crop)
    xa, xb = slot.batch([g])
    assert xa.shape[-1] == 64 and xb.shape[-1] == 80
    assert torch.equal(xa, analyzer.slots["ddamfn"].batch([g])) and torch.equal(xb, analyzer.slots["resnet_dda"].batch([g]))
    ref = predict_logits(slot.model, torch.from_numpy(g[None]), resolve_data_config(slot.model))[0]
    assert torch.allclose(torch.from_numpy(r.faces[0].models["fusion"].logits), ref, atol=1e-5)
    p = (ref / slot.temperature).softmax(0)
    for name, v in r.faces[0].models["fusion"].probs.items():
        assert abs(v - float(p[slot.labels.index(name)])) < 1e-4


def test_gradcam_explains_the_label_shown(analyzer):
    """With test-time flip the faces and their mirror images share one forward: each model's Grad-CAM is that of
    the face alone for the class shown (the top of the flip-averaged probabilities, which may differ from the
    face's own top), and the fusion's map is each branch's Grad-CAM of the fused score mixed by the branch
    weights."""
    r = analyzer.analyze(ASTRONAUT, maps=True)
    f = r.faces[0]
    face = detect_faces(r.image, analyzer.detector).faces[0]
    leaves = []
    for key in ("ddamfn", "resnet_dda"):
        slot = analyzer.slots[key]
        assert slot.tta_flip
        x = slot.batch([crop_face(r.image, face, slot.data.crop)])
        shown = slot.labels.index(f.models[key].top)
        cams, det, layer = gradcam_with_details(slot.model, x, classes=[shown])
        leaves.append((det, layer))
        assert np.allclose(f.models[key].gradcam, resize_maps(torch.from_numpy(cams), 224)[0], atol=1e-4)
    fusion = analyzer.slots["fusion"].model
    with torch.enable_grad():
        out = fusion.fuse(leaves[0][0], leaves[1][0])
    k = torch.tensor([[analyzer.slots["fusion"].labels.index(f.models["fusion"].top)]])
    score = out["logits"].gather(1, k)
    w = f.models["fusion"].branch_weights
    mixed = (w["ddamfn"] * gradcam_from_leaves(score, leaves[0][1], 224)[0]
             + w["resnet_dda"] * gradcam_from_leaves(score, leaves[1][1], 224)[0])
    assert np.allclose(f.models["fusion"].gradcam, mixed, atol=2e-3)  # branch weights are rounded to 1e-4
    plain = analyzer.analyze(ASTRONAUT, maps=False).faces[0]
    for key in ("ddamfn", "resnet_dda", "fusion"):
        for name, v in plain.models[key].probs.items():
            assert abs(v - f.models[key].probs[name]) < 1e-4, (key, name)


def test_gradcam_of_a_face_targets_its_flip_averaged_top_and_spares_the_mirror_rows():
    """gradcam_with_details with ``shown``: rows after the shown ones are other views; each shown row's map is for
    the top of its logits averaged over its views, and no gradient starts from the other views."""
    torch.manual_seed(0)
    model = create_model("ddamfn", input_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    both = torch.cat([x, x.flip(3)])
    cams, det, leaves = gradcam_with_details(model, both, shown=2)
    with torch.no_grad():
        logits = model(both)
    top = ((logits[:2] + logits[2:]) / 2).argmax(1)
    ref, _, _ = gradcam_with_details(model, x, classes=top.tolist())
    assert cams.shape == (2, 64, 64) and np.allclose(cams, ref, atol=1e-4)


def test_a_fusion_without_its_branches_runs_on_its_own(weights):
    fusion = load_weights(weights / "fusion")
    alone = Analyzer({"fusion": fusion}, detector=YuNetDetector(YUNET))
    assert alone.sources == {}
    m = alone.analyze(HOPPER, maps=True).faces[0].models["fusion"]
    assert m.gradcam.shape == m.attention.shape == (224, 224) and set(m.branch_weights) == {"branch_a", "branch_b"}
    assert list(alone.shown) == ["fusion"]  # its branches run in hidden slots, fed what the fusion gives them
    shared = Analyzer.from_pretrained({k: weights / k for k in ("ddamfn", "resnet_dda", "fusion")},
                                      detector=YuNetDetector(YUNET)).analyze(HOPPER).faces[0].models["fusion"]
    assert np.allclose(alone.analyze(HOPPER).faces[0].models["fusion"].logits, shared.logits, atol=1e-5)


def test_the_maps_of_several_faces_are_each_face_s_own(analyzer, weights):
    """One backward serves every face and every model's map (a branch's faces enter its batch again for the
    fusion's score): each face's maps and probabilities equal what it gets read alone, and a lone fusion (hidden
    branches, no copies) gives the fusion's maps of the full page."""
    rgb = load_image(HOPPER)
    face = detect_faces(rgb, analyzer.detector).faces[0]
    spec = analyzer.slots["ddamfn"].data.crop
    crop = crop_face(rgb, face, spec)
    crops = [crop, np.ascontiguousarray(crop[:, ::-1]), np.roll(crop, 3, axis=0)]
    together = analyzer.read(crops, maps=True)
    alone = Analyzer({"fusion": load_weights(weights / "fusion")}, detector=analyzer.detector,
                     maps_dtype=analyzer.maps_dtype).read(crops, maps=True)
    for i, c in enumerate(crops):
        single = analyzer.read([c], maps=True)[0]
        for key in ("ddamfn", "resnet_dda", "fusion"):
            a, b = together[i][key], single[key]
            assert np.abs(a.logits - b.logits).max() < 1e-4, (i, key)
            for kind in ("gradcam", "attention"):
                assert np.abs(getattr(a, kind) - getattr(b, kind)).max() < 1e-3, (i, key, kind)
        assert np.abs(alone[i]["fusion"].gradcam - together[i]["fusion"].gradcam).max() < 1e-3, i


def test_explain_a_chosen_class(analyzer):
    a = analyzer.analyze(HOPPER, maps=True, target="fear").faces[0].models["ddamfn"].gradcam
    b = analyzer.analyze(HOPPER, maps=True, target="happiness").faces[0].models["ddamfn"].gradcam
    assert not np.allclose(a, b)


def test_agreement():
    mk = lambda top, p: ModelResult("m", {top: p, ("sadness" if top == "happiness" else "happiness"): 1 - p},  # noqa
                                    np.zeros((4, 4), np.uint8))
    a = agreement({"a": mk("happiness", 0.9), "b": mk("happiness", 0.9), "c": mk("happiness", 0.9)})
    assert a["all_agree"] and a["score"] == 1.0 and a["text"] == "All 3 models agree: happiness"
    b = agreement({"a": mk("happiness", 0.9), "b": mk("sadness", 0.9), "c": mk("happiness", 0.8)})
    assert not b["all_agree"] and b["votes"] == 2 and b["score"] < 1 and "2 of 3" in b["text"]
    c = agreement({"a": mk("happiness", 0.9), "b": mk("sadness", 0.9)})
    assert c["text"] == "The 2 models disagree" and c["majority"] in ("happiness", "sadness")


def _clip(path, frames=6, damaged=None):
    """An MJPG clip of the Hopper photo drifting sideways; frame ``damaged`` made undecodable."""
    rgb = load_image(HOPPER)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (rgb.shape[1], rgb.shape[0]))
    for i in range(frames):
        wr.write(cv2.cvtColor(np.roll(rgb, 3 * i, axis=1), cv2.COLOR_RGB2BGR))
    wr.release()
    if damaged is not None:
        data = bytearray(path.read_bytes())
        starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]  # each frame's JPEG
        data[starts[damaged]:starts[damaged] + 2000] = bytes(2000)
        path.write_bytes(bytes(data))
    return path


def test_a_file_that_cannot_be_read_is_named_once(tmp_path, capsys):
    """The record of a missing or empty file holds its name and an error that does not repeat it; the line on
    stderr names it once."""
    from fer_core.images import ImageInputError
    from fer_core.predict.batch import Tally, failure

    (tmp_path / "empty.png").write_bytes(b"")
    for name, why in (("nothere.jpg", "no such file"), ("empty.png", "the file is empty (0 bytes)")):
        path = str(tmp_path / name)
        with pytest.raises(ImageInputError) as e:
            load_image(path)
        rec = failure(path, e.value)
        assert rec == {"file": path, "error": why}
        Tally(1).add(0, rec)
        assert capsys.readouterr().err == f"{path}: {why}\n"


def test_cli_on_images_folder_and_a_damaged_video(weights, tmp_path):
    """Images, a folder with a broken file, and a clip with an undecodable frame: every readable input gets its
    records (the clip's faces tracked), each problem is reported by name, and nothing stops early."""
    vid = _clip(tmp_path / "clip.avi", frames=7, damaged=2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(ASTRONAUT.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / "out.json"
    env = {"FER_WEIGHTS_DIR": str(weights), "HF_HUB_OFFLINE": "1", "FER_YUNET_PATH": str(YUNET), "PATH": "/usr/bin"}
    r = subprocess.run([sys.executable, "-m", "fer_core.predict", str(HOPPER), str(folder), str(vid), "--every", "2",
                        "--json", str(out), "--csv", str(tmp_path / "out.csv"), "--maps"], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stderr  # one input was not an image
    recs = json.loads(out.read_text())
    clip = [rec for rec in recs if rec["file"] == str(vid)]
    assert [rec["frame"] for rec in clip] == [0, 2, 4, 6] and "error" in clip[1] and "frame 2" in r.stderr
    assert {f["track"] for rec in clip if "faces" in rec for f in rec["faces"]} == {1}  # one person, one track
    assert any("error" in rec and rec["file"].endswith("broken.jpg") for rec in recs)
    assert "broken.jpg" in r.stderr
    ok = [rec for rec in recs if "faces" in rec]
    assert len(ok) == 5 and all(len(rec["faces"]) == 1 for rec in ok)
    face = ok[0]["faces"][0]
    assert {"too_small", "uncertain", "doubts"} <= set(face) and "uncertain" in face["models"]["ddamfn"]
    # --maps: each image's maps as PNGs beside the JSON, their paths in its record (videos are read without maps)
    photo = next(rec for rec in ok if rec["file"] == str(HOPPER))
    for kind in ("gradcam", "attention"):
        png = cv2.imread(photo["maps"][f"face1/fusion/{kind}"], cv2.IMREAD_UNCHANGED)
        assert png.shape == (224, 224) and png.dtype == np.uint8
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("file,frame,time_s,face,model,top,confidence,uncertain,neutral,happiness")
    assert len(rows) == 1 + 5 * 3


def test_gradcam_leaves_nothing_alive():
    """Grad-CAM's hooks sit in the retained graph: nothing of a finished call may stay reachable (a leak of
    ~1.5 MB per request once showed in the load test)."""
    import gc

    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

    model = create_model("ddamfn").eval()
    x = torch.randn(1, 3, 112, 112)
    for _ in range(3):
        cams, details, leaves = gradcam_with_details(model, x)
        del cams, details, leaves
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, ActivationsAndGradients)]


def test_the_shipped_weights_maps_of_the_examples_are_never_blank():
    """The page's maps (LayerCAM at each model's target) of the shipped weights on the two example photos show
    something for every face and model; plain Grad-CAM at the same target (the page's map until LayerCAM) was zero
    everywhere on some of them, as bench/blank_maps.py measures on FER+ valid."""
    from fer_core.explain import CAM, is_blank
    from fer_core.pretrained import PROJECT_WEIGHTS

    assert CAM == "LayerCAM"
    shipped = Analyzer.from_pretrained({k: PROJECT_WEIGHTS / k for k in ("ddamfn", "resnet_dda", "fusion")},
                                       detector=YuNetDetector(YUNET), maps_dtype="float32")
    plain_blank = 0
    for photo in (HOPPER, ASTRONAUT):
        r = shipped.analyze(photo, maps=True)
        faces = detect_faces(r.image, shipped.detector).faces
        for f, face in zip(r.faces, faces):
            for key in ("ddamfn", "resnet_dda", "fusion"):
                assert not is_blank(f.models[key].gradcam), (photo.name, f.index, key)
            for key in ("ddamfn", "resnet_dda"):
                slot = shipped.slots[key]
                x = slot.batch([crop_face(r.image, face, slot.data.crop)])
                shown = [slot.labels.index(f.models[key].top)]
                ours, _, _ = gradcam_with_details(slot.model, x, classes=shown)
                assert np.allclose(f.models[key].gradcam, resize_maps(torch.from_numpy(ours), 224)[0], atol=1e-4)
                plain_blank += is_blank(gradcam_with_details(slot.model, x, classes=shown, variant="GradCAM")[0][0])
    assert plain_blank >= 1
