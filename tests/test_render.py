"""The page's pictures and texts, from a typed result: the model's input shown whole without smoothing, maps over
the face or alone, the face x model table, the fusion's branch weights, 'About the models' from config.json."""
from types import SimpleNamespace

import numpy as np

from demo.about import about_markdown
from demo.render import MAP_MODES, MAP_SIZE, blank_view, branch_weights, colour_scale, draw_faces, faces_table, \
    input_view, map_view, to_file
from fer_core import create_model
from fer_core.card import FROM_SCRATCH
from fer_core.labels import FERPLUS
from fer_core.results import Analysis, FaceResult, ModelResult
from fer_core.weights import build_config


def _result(key, top, p, weights=None):
    rng = np.random.default_rng(len(key))
    probs = {top: p, **{n: (1 - p) / 7 for n in FERPLUS.names if n != top}}
    heat = np.zeros((MAP_SIZE, MAP_SIZE), np.float32)
    heat[:MAP_SIZE // 2] = 1.0  # upper half weighs most
    return ModelResult(key, probs, rng.integers(0, 256, (64, 64), dtype=np.uint8), gradcam=heat,
                       attention=heat[::-1].copy(), branch_weights=weights)


def _analysis():
    image = np.full((300, 400, 3), 120, np.uint8)
    faces = []
    for i, box in enumerate(([20, 30, 100, 120], [220, 40, 90, 110]), start=1):
        f = FaceResult(i, box=box, landmarks=[[50, 70], [90, 70], [70, 90], [55, 110], [85, 110]], score=0.9)
        f.models = {"ddamfn": _result("ddamfn", "happiness", 0.8), "resnet_dda": _result("resnet_dda", "neutral", 0.6),
                    "fusion": _result("fusion", "happiness", 0.7, {"ddamfn": 0.65, "resnet_dda": 0.35})}
        faces.append(f)
    return Analysis(image, "yunet", faces, [], {"detect": 15.0, "total": 150.0})


def test_the_model_input_is_shown_whole_and_unsmoothed():
    m = _result("ddamfn", "happiness", 0.9)
    view = input_view(m)
    assert view.shape == (4 * 64, 4 * 64, 3)  # a whole factor, at least the map size
    assert np.array_equal(view[::4, ::4, 0], m.input_image) and np.array_equal(view[3::4, 3::4, 1], m.input_image)


def test_maps_over_the_face_or_alone_use_the_colour_scale():
    m = _result("ddamfn", "happiness", 0.9)
    alone = map_view(m, "gradcam", MAP_MODES[1])
    assert alone.shape == (MAP_SIZE, MAP_SIZE, 3)
    scale = colour_scale()
    hot, cold = scale[5, -1].astype(int), scale[5, 0].astype(int)  # the scale's two ends: red, blue
    assert np.abs(alone[10, 10].astype(int) - hot).sum() < 40 and np.abs(alone[-10, 10].astype(int) - cold).sum() < 40
    over = map_view(m, "gradcam", MAP_MODES[0])
    assert over.shape == (MAP_SIZE, MAP_SIZE, 3) and not np.array_equal(over, alone)  # the face shows through
    assert map_view(ModelResult("x", {"neutral": 1.0}, m.input_image), "gradcam") is None  # live mode: no map


def test_a_map_that_is_zero_everywhere_is_said_to_be_so():
    """A map with nothing to show is not drawn as a uniform blue square (which reads as 'no weight anywhere'):
    the face, faded, with words saying the map is zero everywhere, in either mode; a faint map is still drawn."""
    m = _result("ddamfn", "happiness", 0.9)
    m.gradcam = np.zeros((MAP_SIZE, MAP_SIZE), np.float32)
    cold = colour_scale()[5, 0].astype(int)
    for mode in MAP_MODES:
        view = map_view(m, "gradcam", mode)
        assert view.shape == (MAP_SIZE, MAP_SIZE, 3) and np.array_equal(view, blank_view(m, MAP_SIZE))
        assert (np.abs(view.astype(int) - cold).sum(2) < 40).mean() < 0.01  # no blue
        assert (view.max(2) < 60).mean() > 0.005  # dark text over a light face
    small = blank_view(m, 120)
    assert small.shape == (120, 120, 3) and (small.max(2) < 60).any()
    m.gradcam[100:110, 100:110] = 0.05  # faint, not blank
    assert not np.array_equal(map_view(m, "gradcam", MAP_MODES[1]), blank_view(m, MAP_SIZE))


def test_faces_table_boxes_and_branch_weights():
    a = _analysis()
    assert faces_table(a) == [[str(i), "happiness (0.80)", "neutral (0.60)", "happiness (0.70)"] for i in (1, 2)]
    assert branch_weights(a.faces[0].models["fusion"]) == {"DDAMFN": 0.65, "ResNet+DDA": 0.35}
    assert branch_weights(a.faces[0].models["ddamfn"]) is None
    plain, chosen = draw_faces(a), draw_faces(a, selected=2)
    assert plain.shape == a.image.shape and (plain != a.image).any(axis=2).sum() > 400
    assert (chosen != plain).any(axis=2).sum() > 100  # the selected face's box is drawn thicker
    path = to_file(plain)
    assert path.endswith(".png") and to_file(plain) == path and to_file(None) is None


def test_about_the_models_reads_each_config():
    net, models = create_model("ddamfn", input_size=48), {}
    for key, acc in (("ddamfn", 0.791), ("resnet_dda", 0.823)):
        recall = {n: 0.5 for n in FERPLUS.names}
        models[key] = SimpleNamespace(pretrained_cfg=build_config(
            net, label_set=FERPLUS, input_size=(3, 48, 48),
            provenance={"dataset": "ferplus", "protocol": "majority", "wall_time_s": 5400.0, "device": "cpu"},
            metrics={"ferplus_valid": {"n": 3417, "accuracy": acc, "balanced_accuracy": 0.6, "recall": recall}}))
    text = about_markdown(models)
    assert "79.1%" in text and "82.3%" in text and "1 h 30 min" in text and "Recall per class" in text
    assert "late fusion" not in text
    recall = {n: 0.5 for n in FERPLUS.names}
    models["fusion"] = SimpleNamespace(pretrained_cfg=build_config(
        net, label_set=FERPLUS, input_size=(3, 48, 48), provenance={"dataset": "ferplus"},
        metrics={"ferplus_valid": {"n": 3417, "accuracy": 0.846, "balanced_accuracy": 0.622, "recall": recall},
                 "ferplus_valid_late_fusion": {"n": 3417, "accuracy": 0.844, "balanced_accuracy": 0.611,
                                               "recall": recall}}))
    text = about_markdown(models)
    assert ("84.6% on FER+ valid (balanced 62.2%); the mean of the two branches' probabilities (late fusion) 84.4% "
            "(balanced 61.1%)") in text
    assert FROM_SCRATCH in text and "decisions about people" in text
    assert "What the balanced setting costs" not in text  # no balanced figures recorded: nothing said
    cfg = models["fusion"].pretrained_cfg
    cfg["metrics"]["ferplus_valid_balanced"] = {"n": 3417, "accuracy": 0.833, "balanced_accuracy": 0.712,
                                                "recall": {**recall, "contempt": 0.154, "disgust": 0.71}}
    cfg["metrics"]["ferplus_valid"]["recall"] = {**recall, "contempt": 0.0, "disgust": 0.258}
    cost = ("accuracy 83.3% (most accurate: 84.6%), balanced accuracy 71.2% (62.2%), contempt recall 15% (0%), "
            "disgust recall 71% (26%)")
    assert f"- Fusion: {cost}" in about_markdown(models)
    from demo.common import READING_INFO, reading_info

    analyzer = SimpleNamespace(shown={"ddamfn": 0, "fusion": 0}, slots={k: SimpleNamespace(model=m)
                                                                        for k, m in models.items()})
    assert reading_info(analyzer).endswith(f"Fusion on FER+ valid, balanced (most accurate): {cost}")
    assert reading_info(None) == READING_INFO


def test_confusion_images_come_back_as_pictures_and_leave_no_folder(monkeypatch, tmp_path):
    from demo.about import confusion_images

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    net = create_model("ddamfn", input_size=48)
    counts = np.diag(np.arange(1, 9)) + 1
    models = {"ddamfn": SimpleNamespace(pretrained_cfg=build_config(
        net, label_set=FERPLUS, input_size=(3, 48, 48), provenance={"dataset": "ferplus"},
        metrics={"ferplus_valid": {"n": int(counts.sum()), "accuracy": 0.5, "balanced_accuracy": 0.5,
                                   "labels": list(FERPLUS.names), "confusion_matrix": counts.tolist()}})),
        "resnet_dda": SimpleNamespace(pretrained_cfg=build_config(  # no matrix recorded: no picture
            net, label_set=FERPLUS, input_size=(3, 48, 48), provenance={"dataset": "ferplus"}, metrics={}))}
    (image, caption), = confusion_images(models)
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 200 and image.std() > 10
    assert "DDAMFN" in caption
    assert list(tmp_path.iterdir()) == []  # drawn in a folder that is gone
