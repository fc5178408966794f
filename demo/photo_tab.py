"""The photo tab: upload / webcam / clipboard; numbered faces and a face x model table; the three readings and
their maps side by side, small (the compact view, which fits a phone's screen), and each model's full column
on demand (probabilities, Grad-CAM and own attention over the face, what it saw); the analysis to take away as
JSON, CSV and the annotated image."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from fer_core.images import ImageInputError
from fer_core.results import Analysis, display_name

from .common import PREDICTED, READINGS, STATE_TTL_S, Page, SafeImage
from .render import (MAP_MODES, MAP_SIZE, analysis_downloads, branch_weights, colour_scale, doubt_text, draw_faces,
                     faces_table, input_view, map_view, table_headers, timings_text, to_file)

EXAMPLES = Path(__file__).resolve().parent / "examples"
EXAMPLE_FILES = [EXAMPLES / "grace_hopper.jpg", EXAMPLES / "astronaut.png"]
COMPACT_MAP = 120  # the compact view's maps: three models side by side fit a 390 px phone screen


class ModelColumn:
    """One model's full column: probabilities, Grad-CAM, own attention, its input (and a fusion's branch
    weights)."""

    def __init__(self, key: str, page: Page):
        slot = page.analyzer.slots[key]
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


class CompactCard:
    """One model in the compact view: its top three and its two maps, small, each named beneath it (side by side
    on a wide screen, one above the other on a phone's: the name travels with its map)."""

    def __init__(self, key: str, fusion: bool = False):
        self.key = key
        self.probs = gr.Label(num_top_classes=3, label=display_name(key), elem_id=f"compact-label-{key}")
        kw = dict(interactive=False, height=COMPACT_MAP, buttons=[], elem_classes=["map", "compact-map"],
                  container=False, show_label=False)
        with gr.Row(equal_height=True):
            with gr.Column(min_width=COMPACT_MAP, elem_classes=["compact-cell"]):
                self.cam = gr.Image(elem_id=f"compact-cam-{key}", **kw)
                gr.Markdown("Grad-CAM", elem_id=f"compact-cam-name-{key}", elem_classes=["map-name"])
            with gr.Column(min_width=COMPACT_MAP, elem_classes=["compact-cell"]):
                self.att = gr.Image(elem_id=f"compact-att-{key}", **kw)
                gr.Markdown("branches' attention" if fusion else "own attention", elem_id=f"compact-att-name-{key}",
                            elem_classes=["map-name"])

    @property
    def components(self):
        return [self.probs, self.cam, self.att]

    def show(self, analysis: Analysis | None, index: int, mode: str) -> dict:
        if analysis is None or not analysis.faces or self.key not in analysis.face(index).models:
            return {c: None for c in self.components}
        m = analysis.face(index).models[self.key]
        return {self.probs: m.probs, self.cam: to_file(map_view(m, "gradcam", mode)),
                self.att: to_file(map_view(m, "attention", mode))}


class PhotoTab:
    """The photo tab's components and its named handlers (each callable alone, as the tests do)."""

    def __init__(self, page: Page):
        self.page = page
        keys, labels = page.keys, page.labels
        with gr.Row():
            with gr.Column():
                self.image = SafeImage(label="Photo", type="filepath", image_mode=None,
                                       sources=["upload", "webcam", "clipboard"], height=360, elem_id="photo-input")
                with gr.Row():
                    self.whole = gr.Checkbox(label="No face found: treat the whole image as one face", value=False)
                    self.explain = gr.Dropdown([PREDICTED] + labels, value=PREDICTED, label="Grad-CAM explains")
                self.reading = gr.Radio(list(READINGS), value=list(READINGS)[0], label="Reading", elem_id="reading",
                                        info=page.reading_info)
                self.run = gr.Button("Analyse", variant="primary")
            with gr.Column():
                self.annotated = gr.Image(label="Faces", interactive=False, height=360, elem_id="annotated")
                self.table = gr.Dataframe(headers=table_headers(keys), interactive=False, elem_id="faces-table",
                                          wrap=True, label="Every face at a glance: click a row to see that face below")
        self.agreement = gr.Markdown(elem_id="agreement")
        self.doubt = gr.Markdown(elem_id="doubt")
        self.mode = gr.Radio(list(MAP_MODES), value=MAP_MODES[0], label="Maps", elem_id="map-mode")
        self.cards = []
        with gr.Row(equal_height=False, elem_id="compact"):
            for key in keys:
                with gr.Column(min_width=90):
                    self.cards.append(CompactCard(key, fusion=hasattr(page.analyzer.slots[key].model, "fuse")))
        gr.Markdown("Each model: its three likeliest labels and its two maps, each named beneath it: where it "
                    "looked (Grad-CAM) and its own attention. 'Each model in full' adds every probability, larger "
                    "maps and the face as the model saw it.", elem_id="compact-note")
        self.columns = []
        with gr.Accordion("Each model in full", open=False, elem_id="full-columns"):
            with gr.Row(equal_height=False):
                for key in keys:
                    with gr.Column(min_width=300, elem_id=f"col-{key}"):
                        self.columns.append(ModelColumn(key, page))
        gr.Image(to_file(colour_scale()), show_label=False, interactive=False, height=60, elem_id="colour-scale",
                 container=False, buttons=[])
        self.timings = gr.Markdown()
        self.downloads = gr.File(label="Take it away: the analysis as JSON and CSV, and the annotated image",
                                 file_count="multiple", interactive=False, elem_id="downloads")
        with gr.Accordion("Analysis (JSON)", open=False):
            self.data = gr.JSON(label="Analysis")
        # this visitor's analysis, its image downscaled (Analysis.for_display), dropped after STATE_TTL_S
        self.state = gr.State(time_to_live=STATE_TTL_S)
        self.shown = gr.State(1)  # the face shown below
        self.per_face = ([self.annotated, self.agreement, self.doubt]
                         + [c for col in self.cards + self.columns for c in col.components])
        self.outputs = [self.table, self.timings, self.data, self.state, self.shown, self.downloads] + self.per_face
        self.settings = [self.image, self.whole, self.explain, self.reading, self.mode, self.state]

    # -- handlers ------------------------------------------------------------------------------------------------
    def analyse_image(self, image, whole_image: bool, explain: str, reading: str = "most accurate",
                      maps: bool = True) -> Analysis:
        self.page.ready()
        if image is None:
            raise gr.Error("Give an image first (upload, paste or webcam).")
        try:
            return self.page.runner.photo(image, maps=maps, whole_image_if_none=whole_image,
                                          setting=READINGS[reading],
                                          target=None if explain in (None, "", PREDICTED) else explain)
        except ImageInputError as e:
            raise gr.Error(str(e)) from None

    def face_view(self, analysis: Analysis | None, index: int, map_mode: str) -> dict:
        views = self.cards + self.columns
        if analysis is None or not analysis.faces:
            note = " ".join(analysis.notes) if analysis else ""
            out = {self.annotated: to_file(analysis.image) if analysis else None, self.agreement: f"### {note}",
                   self.doubt: ""}
            for view in views:
                out.update(view.show(None, index, map_mode))
            return out
        f = analysis.face(index)
        notes = "".join(f"\n\n*{n}*" for n in analysis.notes)
        out = {self.annotated: to_file(draw_faces(analysis, f.index)),
               self.agreement: f"### Face {f.index}: {f.agreement['text']} (agreement {f.agreement['score']:.2f})"
                               + notes,
               self.doubt: doubt_text(f)}
        for view in views:
            out.update(view.show(analysis, f.index, map_mode))
        return out

    def analyse(self, img, whole_image, explain_what, read_as, map_mode):
        analysis = self.analyse_image(img, whole_image, explain_what, read_as)
        downloads = analysis_downloads(analysis, draw_faces(analysis), self.page.labels)
        return {self.table: faces_table(analysis), self.timings: timings_text(analysis),
                self.data: analysis.to_json(), self.state: analysis.for_display(), self.shown: 1,
                self.downloads: downloads, **self.face_view(analysis, 1, map_mode)}

    def kept(self, analysis, img, whole_image, explain_what, read_as):
        """This visitor's analysis; a cached example's result carries none (the cache keeps no Python objects),
        so it is redone once."""
        if not isinstance(analysis, Analysis) and img is not None:
            analysis = self.analyse_image(img, whole_image, explain_what, read_as).for_display()
        return analysis

    def pick(self, img, whole_image, explain_what, read_as, map_mode, analysis, evt: gr.SelectData):
        analysis = self.kept(analysis, img, whole_image, explain_what, read_as)
        if not isinstance(analysis, Analysis) or not analysis.faces:
            return {c: gr.skip() for c in self.per_face + [self.shown, self.state]}
        index = analysis.faces[min(evt.index[0], len(analysis.faces) - 1)].index
        return {self.shown: index, self.state: analysis, **self.face_view(analysis, index, map_mode)}

    def change_mode(self, img, whole_image, explain_what, read_as, map_mode, analysis, index):
        analysis = self.kept(analysis, img, whole_image, explain_what, read_as)
        if not isinstance(analysis, Analysis):
            return {c: gr.skip() for c in self.per_face + [self.state]}
        return {self.state: analysis, **self.face_view(analysis, index, map_mode)}

    def example(self, img):
        return self.analyse(img, False, PREDICTED, list(READINGS)[0], MAP_MODES[0])

    def wire(self, tab) -> None:
        group = self.page.group
        self.run.click(self.analyse, [self.image, self.whole, self.explain, self.reading, self.mode], self.outputs,
                       api_visibility="private", **group)
        with tab:  # the examples run the same analysis with the default settings; each is computed once
            gr.Examples([[str(p)] for p in EXAMPLE_FILES], inputs=[self.image], outputs=self.outputs,
                        label="Public-domain examples", fn=self.example, cache_examples=True, cache_mode="lazy",
                        api_visibility="private")
        self.table.select(self.pick, self.settings, self.per_face + [self.shown, self.state],
                          api_visibility="private", **group)
        self.mode.change(self.change_mode, self.settings + [self.shown], self.per_face + [self.state],
                         api_visibility="private", **group)
