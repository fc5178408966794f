"""The Gradio page: a photo tab (upload / webcam / clipboard; numbered faces and a face x model table; per model
its probabilities, Grad-CAM and own attention over the face, and what it saw), a live webcam tab, and what the
models are worth ('About the models'). The ``predict`` API endpoint returns the analysis as JSON.

    build_demo(analyzer) -> gr.Blocks: layout, then one handler per event; handlers return {component: value}.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from fer_core.images import ImageInputError
from fer_core.predict import Analyzer
from fer_core.results import Analysis, display_name

from .about import about_markdown, confusion_images
from .render import (MAP_MODES, MAP_SIZE, branch_weights, colour_scale, draw_faces, faces_table, input_view,
                     map_view, table_headers, timings_text, to_file)

EXAMPLES = Path(__file__).resolve().parent / "examples"
EXAMPLE_FILES = [EXAMPLES / "grace_hopper.jpg", EXAMPLES / "astronaut.png"]
PREDICTED = "predicted class"
STATE_TTL_S = 1800  # a visitor's kept analysis is dropped after this long
INTRO = """# Facial expressions, read by three attention models
Upload a photo, paste one, or use your webcam. Every face is found (YuNet), cropped and aligned the way each
model was trained, and read by **DDAMFN**, **ResNet + DDA** and their **fusion**. Each column shows the
probabilities (temperature-calibrated), where the model looked (**Grad-CAM**, and the model's **own attention**)
and the face exactly as the model saw it. How far to trust them: *About the models* below.
Examples: public-domain photos of Grace Hopper (US Navy) and Eileen Collins (NASA).
"""
CSS = """
.map img { image-rendering: pixelated; }
#colour-scale { max-width: 680px; }
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


class ModelColumn:
    """One model's column: probabilities, Grad-CAM, own attention, its input (and a fusion's branch weights)."""

    def __init__(self, key: str, analyzer: Analyzer):
        slot = analyzer.slots[key]
        self.key = key
        gr.Markdown(f"### {display_name(key)}\n{slot.model.pretrained_cfg['architecture']}, "
                    f"{slot.size}x{slot.size} {'grayscale' if slot.grayscale else 'colour'} input")
        self.probs = gr.Label(num_top_classes=len(slot.labels), label="Probabilities", elem_id=f"label-{key}")
        kw = dict(interactive=False, height=MAP_SIZE + 16, buttons=["download", "fullscreen"], elem_classes=["map"])
        self.cam = gr.Image(label="Grad-CAM", elem_id=f"cam-{key}", **kw)
        self.att = gr.Image(label="Own attention" if not hasattr(slot.model, "fuse")
                            else "Branches' attention, weighted", elem_id=f"att-{key}", **kw)
        self.seen = gr.Image(label=f"What it saw: {slot.size}x{slot.size}, enlarged without smoothing",
                             elem_id=f"seen-{key}", **kw)
        # below the maps, so that the three columns' maps stay level
        self.weights = (gr.Label(label="How much each branch counted", elem_id="branch-weights")
                        if hasattr(slot.model, "fuse") else None)

    @property
    def components(self):
        return [c for c in (self.probs, self.weights, self.cam, self.att, self.seen) if c is not None]

    def show(self, analysis: Analysis | None, index: int, mode: str) -> dict:
        if analysis is None or not analysis.faces or self.key not in analysis.face(index).models:
            return {c: None for c in self.components}
        m = analysis.face(index).models[self.key]
        out = {self.probs: m.probs, self.cam: to_file(map_view(m, "gradcam", mode)),
               self.att: to_file(map_view(m, "attention", mode)), self.seen: to_file(input_view(m))}
        if self.weights is not None:
            out[self.weights] = branch_weights(m)
        return out


def analysis_concurrency() -> int:
    """How many analyses the machine runs at once: ``FER_CONCURRENCY``, else one per GPU, else the CPU cores over
    the threads each analysis uses (one on a 2-core machine with 2 threads)."""
    import os

    import torch

    if os.environ.get("FER_CONCURRENCY"):
        return max(1, int(os.environ["FER_CONCURRENCY"]))
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))


def build_demo(analyzer: Analyzer | None, load_error: str | None = None, concurrency: int | None = None) -> gr.Blocks:
    concurrency = concurrency or analysis_concurrency()
    keys = list(analyzer.shown) if analyzer else []
    labels = analyzer.slots[keys[0]].labels if analyzer else []
    models = {k: analyzer.slots[k].model for k in keys}
    about_dir = Path(tempfile.mkdtemp(prefix="fer_about_"))

    def analyse_image(image, whole_image: bool, explain: str, maps: bool = True) -> Analysis:
        if analyzer is None:
            raise gr.Error(load_error or "no models are loaded")
        if image is None:
            raise gr.Error("Give an image first (upload, paste or webcam).")
        try:
            return analyzer.analyze(image, maps=maps, whole_image_if_none=whole_image,
                                    target=None if explain in (None, "", PREDICTED) else explain)
        except ImageInputError as e:
            raise gr.Error(str(e)) from None

    def predict(image: FileData, whole_image: bool = False, explain: str = PREDICTED, maps: bool = False) -> dict:
        """Analyse one photo: every face's box, and per model the calibrated probabilities, the top label and
        (fusion) the branch weights; the models' agreement; notes and timings. ``maps=True`` also computes each
        model's Grad-CAM (of the class ``explain`` names, else the top) and own attention, returned as base64
        8-bit grayscale PNGs (``gradcam_png``, ``attention_png``); without it none is computed."""
        path = image.get("path") if isinstance(image, dict) else getattr(image, "path", image)
        return analyse_image(path, whole_image, explain, maps=maps).to_json(maps=maps)

    with gr.Blocks(title="Facial expressions: DDAMFN, ResNet+DDA, fusion", delete_cache=(900, 3600)) as demo:
        gr.Markdown(INTRO)
        if analyzer is None:
            gr.Markdown(f"> **The models could not be loaded.** {load_error}")
        elif analyzer.detector_note:
            gr.Markdown(f"> **Face detector:** {analyzer.detector_note}")
        with gr.Tab("Photo") as photo_tab:
            with gr.Row():
                with gr.Column():
                    image = SafeImage(label="Photo", type="filepath", image_mode=None,
                                      sources=["upload", "webcam", "clipboard"], height=360, elem_id="photo-input")
                    with gr.Row():
                        whole = gr.Checkbox(label="No face found: treat the whole image as one face", value=False)
                        explain = gr.Dropdown([PREDICTED] + labels, value=PREDICTED, label="Grad-CAM explains")
                    run = gr.Button("Analyse", variant="primary")
                with gr.Column():
                    annotated = gr.Image(label="Faces", interactive=False, height=360, elem_id="annotated")
                    table = gr.Dataframe(headers=table_headers(keys), interactive=False, elem_id="faces-table",
                                         wrap=True, label="Every face at a glance: click a row to see that face below")
            agreement = gr.Markdown(elem_id="agreement")
            mode = gr.Radio(list(MAP_MODES), value=MAP_MODES[0], label="Maps", elem_id="map-mode")
            columns = []
            with gr.Row(equal_height=False):
                for key in keys:
                    with gr.Column(min_width=300, elem_id=f"col-{key}"):
                        columns.append(ModelColumn(key, analyzer))
            gr.Image(to_file(colour_scale()), show_label=False, interactive=False, height=60, elem_id="colour-scale",
                     container=False, buttons=[])
            timings = gr.Markdown()
            with gr.Accordion("Analysis (JSON)", open=False):
                data = gr.JSON(label="Analysis")
            # this visitor's analysis, its image downscaled (Analysis.for_display), dropped after STATE_TTL_S
            state = gr.State(time_to_live=STATE_TTL_S)
            shown = gr.State(1)  # the face shown below
            per_face = [annotated, agreement] + [c for col in columns for c in col.components]
            outputs = [table, timings, data, state, shown] + per_face
            examples = [[str(p)] for p in EXAMPLE_FILES]

        with gr.Tab("Live webcam"):
            gr.Markdown("Live reading of the first face in view, several times a second. Maps are optional here: "
                        "each costs a backward pass per model.")
            with gr.Row():
                cam_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="webcam")
                cam_out = gr.Image(label="Faces", interactive=False, elem_id="live-faces")
            maps_live = gr.Checkbox(label="Compute maps (slower)", value=False)
            live_agree = gr.Markdown(elem_id="live-agreement")
            live_rate = gr.Markdown(elem_id="live-rate")
            with gr.Row():
                live_labels = [gr.Label(num_top_classes=3, label=display_name(k), elem_id=f"live-{k}") for k in keys]

        with gr.Accordion("About the models: how good they are, and where not to trust them", open=False,
                          elem_id="about"):
            gr.Markdown(about_markdown(models))
            confusions = confusion_images(models, about_dir)
            gr.Gallery(confusions, label="Confusion matrices on FER+ valid", columns=3, object_fit="contain",
                       height="auto", elem_id="confusions", visible=bool(confusions), interactive=False)

        # -- events ------------------------------------------------------------------------------------------
        def face_view(analysis: Analysis | None, index: int, map_mode: str) -> dict:
            if analysis is None or not analysis.faces:
                note = " ".join(analysis.notes) if analysis else ""
                out = {annotated: to_file(analysis.image) if analysis else None, agreement: f"### {note}"}
                for col in columns:
                    out.update(col.show(None, index, map_mode))
                return out
            f = analysis.face(index)
            notes = "".join(f"\n\n*{n}*" for n in analysis.notes)
            out = {annotated: to_file(draw_faces(analysis, f.index)),
                   agreement: f"### Face {f.index}: {f.agreement['text']} (agreement {f.agreement['score']:.2f})"
                              + notes}
            for col in columns:
                out.update(col.show(analysis, f.index, map_mode))
            return out

        def on_analyse(img, whole_image, explain_what, map_mode):
            analysis = analyse_image(img, whole_image, explain_what)
            return {table: faces_table(analysis), timings: timings_text(analysis), data: analysis.to_json(),
                    state: analysis.for_display(), shown: 1, **face_view(analysis, 1, map_mode)}

        def kept(analysis, img, whole_image, explain_what):
            """This visitor's analysis; a cached example's result carries none (the cache keeps no Python objects),
            so it is redone once."""
            if not isinstance(analysis, Analysis) and img is not None:
                analysis = analyse_image(img, whole_image, explain_what).for_display()
            return analysis

        def on_pick(img, whole_image, explain_what, map_mode, analysis, evt: gr.SelectData):
            analysis = kept(analysis, img, whole_image, explain_what)
            if not isinstance(analysis, Analysis) or not analysis.faces:
                return {c: gr.skip() for c in per_face + [shown, state]}
            index = analysis.faces[min(evt.index[0], len(analysis.faces) - 1)].index
            return {shown: index, state: analysis, **face_view(analysis, index, map_mode)}

        def on_mode(img, whole_image, explain_what, map_mode, analysis, index):
            analysis = kept(analysis, img, whole_image, explain_what)
            if not isinstance(analysis, Analysis):
                return {c: gr.skip() for c in per_face + [state]}
            return {state: analysis, **face_view(analysis, index, map_mode)}

        def on_live(frame, maps: bool):
            if analyzer is None or frame is None:
                return {c: gr.skip() for c in (cam_out, live_agree, live_rate, *live_labels)}
            t0 = time.perf_counter()
            try:
                analysis = analyzer.analyze(frame, maps=maps)
            except ImageInputError:
                return {c: gr.skip() for c in (cam_out, live_agree, live_rate, *live_labels)}
            rate = f"{1.0 / max(time.perf_counter() - t0, 1e-6):.1f} results/s ({analysis.timings_ms['total']:.0f} ms)"
            if not analysis.faces:
                return {cam_out: frame, live_agree: "no face in view", live_rate: rate,
                        **{lab: None for lab in live_labels}}
            f = analysis.faces[0]
            return {cam_out: draw_faces(analysis, 1), live_agree: f"**{f.agreement['text']}**", live_rate: rate,
                    **{lab: f.models[k].probs for lab, k in zip(live_labels, keys)}}

        # every event that runs the models shares one concurrency group sized to the machine, so that the
        # queue's estimates are true (the models would serialise the excess on their locks, unseen by the queue)
        group = dict(concurrency_id="analysis", concurrency_limit=concurrency)
        run.click(on_analyse, [image, whole, explain, mode], outputs, api_visibility="private", **group)
        with photo_tab:  # the examples run the same analysis with the default settings; each is computed once
            gr.Examples(examples, inputs=[image], outputs=outputs, label="Public-domain examples",
                        fn=lambda img: on_analyse(img, False, PREDICTED, MAP_MODES[0]), cache_examples=True,
                        cache_mode="lazy", api_visibility="private")
        settings = [image, whole, explain, mode, state]
        table.select(on_pick, settings, per_face + [shown, state], api_visibility="private", **group)
        mode.change(on_mode, settings + [shown], per_face + [state], api_visibility="private", **group)
        cam_in.stream(on_live, [cam_in, maps_live], [cam_out, live_agree, live_rate, *live_labels],
                      stream_every=0.1, time_limit=120, api_visibility="private", **group)
        gr.api(predict, api_name="predict", **group)
        for fn in demo.fns.values():  # gr.Examples takes no group: its lazily cached run joins it here
            if fn.name == "load_example_output":
                fn.concurrency_id, fn.concurrency_limit = group["concurrency_id"], group["concurrency_limit"]
    return demo
