"""The Gradio page: three tabs, each built by its own module with named handlers (``photo_tab``, ``live_tab``,
``video_tab``), what the models are worth ('About the models'), and the ``predict`` API endpoint, which returns
the analysis as JSON.

    build_demo(analyzer) -> gr.Blocks: layout, then one handler per event; handlers return {component: value}.
"""
from __future__ import annotations

import gradio as gr
from gradio.data_classes import FileData

from fer_core.predict import Analyzer

from .about import about_markdown, confusion_images
from .common import PREDICTED, READINGS, Page, analysis_concurrency  # noqa: F401  (re-exported for tests, app)
from .live_tab import LiveTab
from .photo_tab import PhotoTab
from .runner import Runner
from .video_tab import VideoTab

INTRO = """# Facial expressions, read by three attention models
Upload a photo, paste one, use your webcam, or upload a clip. Every face is found (YuNet), cropped and aligned the
way each model was trained, and read by **DDAMFN**, **ResNet + DDA** and their **fusion**: the probabilities
(temperature-calibrated), where each model looked (**Grad-CAM**, as LayerCAM, and its **own attention**) and the
face exactly as the model saw it. How far to trust them: *About the models* below.
Examples: public-domain photos of Grace Hopper (US Navy) and Eileen Collins (NASA).
"""
CSS = """
.map img { image-rendering: pixelated; }
#colour-scale { max-width: 680px; }
#compact { gap: 6px; }
.compact-map img { object-fit: contain; }
/* each compact map with its name beneath it: one cell, so that a narrow screen wraps them together */
.compact-cell { gap: 0 !important; }
.map-name { text-align: center; font-size: var(--text-sm); line-height: 1.2; }
.map-name p { margin: 0 !important; }
/* the compact view's three labels side by side: a heading and lines that fit a third of a phone's width */
#compact [id^="compact-label-"] .output-class { font-size: clamp(0.8rem, 3.6vw, var(--text-xxl)) !important;
  padding: var(--size-6) 0 var(--size-2) 0 !important; }
#compact [id^="compact-label-"] .confidence-set { font-size: clamp(0.55rem, 2.4vw, var(--text-md)) !important; }
#compact [id^="compact-label-"] .line { padding: 0 var(--size-1) !important; min-width: 4px; }
"""


def build_demo(analyzer: Analyzer | None, load_error: str | None = None, concurrency: int | None = None,
               runner: Runner | None = None) -> gr.Blocks:
    """The page for ``analyzer``'s models; ``runner`` says where analyses run (default: on the analyzer's own
    device; :func:`demo.runner.make_runner` picks ZeroGPU on a Space that has it)."""
    page = Page.build(analyzer, load_error, concurrency, runner)
    models = {k: analyzer.slots[k].model for k in page.keys}
    with gr.Blocks(title="Facial expressions: DDAMFN, ResNet+DDA, fusion", delete_cache=(900, 3600)) as demo:
        gr.Markdown(INTRO)
        if analyzer is None:
            gr.Markdown(f"> **The models could not be loaded.** {load_error}")
        else:
            for note in ([analyzer.detector_note] if analyzer.detector_note else []) + analyzer.engine_notes:
                gr.Markdown(f"> **Note:** {note}")
        with gr.Tab("Photo") as photo_tab:
            photo = PhotoTab(page)
        with gr.Tab("Live webcam"):
            live = LiveTab(page)
        with gr.Tab("Video"):
            video = VideoTab(page)
        with gr.Accordion("About the models: how good they are, and where not to trust them", open=False,
                          elem_id="about"):
            gr.Markdown(about_markdown(models))
            confusions = confusion_images(models)
            gr.Gallery(confusions, label="Confusion matrices on FER+ valid", columns=3, object_fit="contain",
                       height="auto", elem_id="confusions", visible=bool(confusions), interactive=False)

        photo.wire(photo_tab)
        live.wire(demo)
        video.wire()

        def predict(image: FileData, whole_image: bool = False, explain: str = PREDICTED, maps: bool = False,
                    balanced: bool = False) -> dict:
            """Analyse one photo: every face's box, and per model the calibrated probabilities, the top label
            and (fusion) the branch weights; the models' agreement; doubt; notes and timings. ``maps=True``
            also computes each model's Grad-CAM (of the class ``explain`` names, else the top) and own
            attention, returned as base64 8-bit grayscale PNGs (``gradcam_png``, ``attention_png``); without it
            none is computed. ``balanced=True`` reads the logits in the balanced setting (rare classes named more
            often; fer_core/balance.py)."""
            path = image.get("path") if isinstance(image, dict) else getattr(image, "path", image)
            reading = list(READINGS)[1 if balanced else 0]
            return photo.analyse_image(path, whole_image, explain, reading, maps=maps).to_json(maps=maps)

        gr.api(predict, api_name="predict", **page.group)
        for fn in demo.fns.values():  # gr.Examples takes no group: its lazily cached run joins it here
            if fn.name == "load_example_output":
                fn.concurrency_id, fn.concurrency_limit = page.group["concurrency_id"], page.group["concurrency_limit"]
    return demo
