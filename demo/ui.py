"""The Gradio page: upload / webcam / clipboard, numbered faces, three model columns with their maps, live mode."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np

from fer_core.images import ImageInputError, load_image
from fer_core.predict import DISPLAY_NAMES, MODEL_KEYS, Analyzer, to_json

from .render import branch_text, draw_faces, label_dict, model_views, timings_text, to_file

EXAMPLES = Path(__file__).resolve().parent / "examples"
PREDICTED = "predicted class"
INTRO = """# Facial expressions, read by three attention models
Upload a photo, paste one, or use your webcam. Every face is found (YuNet, or OpenCV Haar as a fallback), cropped
and aligned the way each model was trained, and read by **DDAMFN**, **ResNet + DDA** and their **fusion**.
Each column shows the probabilities (temperature-calibrated), a **Grad-CAM** map and the model's **own
attention**. Examples: public-domain photos of Grace Hopper (US Navy) and Eileen Collins (NASA).
"""


class SafeImage(gr.Image):
    """An image input whose preprocessing never fails on a bad file: the raw upload goes to our own loader,
    which says what is wrong (not an image, empty, truncated, too large ...)."""

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # noqa: BLE001  (Gradio raises many kinds for undecodable files)
            return None if payload is None else payload.path


def _rgb(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 3 else np.repeat(img[..., None], 3, -1)


def _face_outputs(result: dict, rgb: np.ndarray | None, index: int):
    """The per-face part of the page for face ``index`` (1-based)."""
    faces = result["faces"]
    f = next((x for x in faces if x["index"] == index), faces[0])
    outs = []
    for key in MODEL_KEYS:
        if key in f["models"]:
            cam, att = model_views(f, key)
            outs += [label_dict(f, key), cam, att]
        else:
            outs += [None, None, None]
    crops = [(to_file(_rgb(f["crops"][k])), f"{DISPLAY_NAMES[k]} input") for k in MODEL_KEYS if k in f["crops"]]
    agree = f["agreement"]
    line = f"### Face {f['index']}: {agree['text']} (agreement {agree['score']:.2f})"
    return [line, *outs, branch_text(f) if "fusion" in f["models"] else "", crops]


def build_demo(analyzer: Analyzer | None, load_error: str | None = None) -> gr.Blocks:
    labels = analyzer.slots[next(iter(analyzer.slots))].labels if analyzer else []

    def predict(image, whole_image: bool = False, explain: str = PREDICTED):
        """Analyse one image: faces with boxes, per model the calibrated probabilities and top label."""
        if analyzer is None:
            raise gr.Error(load_error or "no models are loaded")
        if image is None:
            raise gr.Error("Give an image first (upload, paste or webcam).")
        try:
            rgb = load_image(image)
            result = analyzer.analyze(rgb, whole_image_if_none=whole_image,
                                      target=None if explain in (None, "", PREDICTED) else explain)
        except ImageInputError as e:
            raise gr.Error(str(e)) from None
        data = to_json(result)
        if not result["faces"]:
            msg = " ".join(result["notes"])
            empty = [None] * (3 * len(MODEL_KEYS))
            return [to_file(rgb), gr.update(choices=[], value=None), f"### {msg}", *empty, "", [], timings_text(result),
                    data, None]
        choices = [str(f["index"]) for f in result["faces"]]
        notes = "".join(f"\n\n*{n}*" for n in result["notes"])
        per_face = _face_outputs(result, rgb, 1)
        per_face[0] += notes
        state = {"result": result, "rgb": rgb}
        return [to_file(draw_faces(rgb, result, 1)), gr.update(choices=choices, value="1"), *per_face,
                timings_text(result), data, state]

    def select_face(choice, state):
        if not state or not choice:
            return [gr.skip()] * (2 + 3 * len(MODEL_KEYS) + 2)
        idx = int(choice)
        per_face = _face_outputs(state["result"], state["rgb"], idx)
        return [to_file(draw_faces(state["rgb"], state["result"], idx)), *per_face]

    def live(frame, maps: bool):
        if analyzer is None or frame is None:
            return [gr.skip()] * (3 + len(MODEL_KEYS))
        t0 = time.perf_counter()
        try:
            result = analyzer.analyze(frame, maps=maps)
        except ImageInputError:
            return [gr.skip()] * (3 + len(MODEL_KEYS))
        if not result["faces"]:
            return [frame, None, None, None, "no face in view", ""]
        f = result["faces"][0]
        fps = 1.0 / max(time.perf_counter() - t0, 1e-6)
        return [draw_faces(frame, result, 1), *[label_dict(f, k) if k in f["models"] else None for k in MODEL_KEYS],
                f"**{f['agreement']['text']}**", f"{fps:.1f} results/s ({result['timings_ms']['total']:.0f} ms)"]

    with gr.Blocks(title="Facial expressions: DDAMFN, ResNet+DDA, fusion", delete_cache=(900, 3600)) as demo:
        gr.Markdown(INTRO)
        if analyzer is None:
            gr.Markdown(f"> **The models could not be loaded.** {load_error}")
        with gr.Tab("Photo"):
            with gr.Row():
                with gr.Column():
                    image = SafeImage(label="Photo", type="filepath", image_mode=None,
                                      sources=["upload", "webcam", "clipboard"], height=360,
                                      elem_id="photo-input")
                    with gr.Row():
                        whole = gr.Checkbox(label="No face found: treat the whole image as one face", value=False)
                        explain = gr.Dropdown([PREDICTED] + labels, value=PREDICTED, label="Grad-CAM explains")
                    run = gr.Button("Analyse", variant="primary")
                    gr.Examples([[str(EXAMPLES / "grace_hopper.jpg")], [str(EXAMPLES / "astronaut.png")]],
                                inputs=[image], label="Public-domain examples")
                with gr.Column():
                    annotated = gr.Image(label="Faces", interactive=False, height=360)
                    face = gr.Dropdown(choices=[], label="Face", interactive=True)
            agreement = gr.Markdown()
            cols = []
            with gr.Row(equal_height=False):
                for key in MODEL_KEYS:
                    with gr.Column(elem_id=f"col-{key}"):
                        gr.Markdown(f"## {DISPLAY_NAMES[key]}")
                        lab = gr.Label(num_top_classes=8, label=f"{DISPLAY_NAMES[key]} probabilities",
                                       elem_id=f"label-{key}")
                        cam = gr.Image(label="Grad-CAM", interactive=False, height=180)
                        att = gr.Image(label="Own attention" if key != "fusion" else "Branch-weighted attention",
                                       interactive=False, height=180)
                        cols += [lab, cam, att]
                        if key == "fusion":
                            weights = gr.Markdown(elem_id="branch-weights")
            crops = gr.Gallery(label="What each model saw (its crop, at its input size)", columns=3, height=170)
            timings = gr.Markdown()
            data = gr.JSON(label="Analysis (JSON)")
            state = gr.State()
            outputs = [annotated, face, agreement, *cols, weights, crops, timings, data, state]
            run.click(predict, [image, whole, explain], outputs, api_name="predict", concurrency_limit=2)
            face.change(select_face, [face, state], [annotated, agreement, *cols, weights, crops],
                        api_visibility="private")
        with gr.Tab("Live webcam"):
            gr.Markdown("Live reading of the first face, several times a second. Maps are optional here: they cost "
                        "a backward pass per model.")
            with gr.Row():
                cam_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
                cam_out = gr.Image(label="Faces", interactive=False)
            maps_live = gr.Checkbox(label="Compute maps (slower)", value=False)
            live_agree = gr.Markdown()
            live_fps = gr.Markdown()
            with gr.Row():
                live_labels = [gr.Label(num_top_classes=3, label=DISPLAY_NAMES[k]) for k in MODEL_KEYS]
            cam_in.stream(live, [cam_in, maps_live], [cam_out, *live_labels, live_agree, live_fps],
                          stream_every=0.12, time_limit=120, concurrency_limit=2, api_visibility="private")
    return demo
