"""The live webcam tab: every face followed across frames (:mod:`fer_core.tracking`), each labelled over its box
with the fusion's reading; the followed face (the largest, or the one picked by its number) read by the three
models, their probabilities smoothed over a short window (a setting; 1 is off). A frame that arrives while the
last is still being read is dropped, not queued (a Gradio stream keeps only its latest input: each new frame
overwrites the one waiting), and the rate at which readings reach the browser is counted in the browser itself."""
from __future__ import annotations

import time

import gradio as gr

from fer_core.images import ImageInputError
from fer_core.results import display_name
from fer_core.tracking import Smoother, Tracker

from .common import STATE_TTL_S, Page
from .render import caption, doubt_text, draw_faces

# the browser captures a frame every STREAM_EVERY_S while no reading is pending (it skips the tick otherwise), so a
# short tick only trims the wait between a reading's arrival and the next capture
STREAM_EVERY_S = 0.04
# counts, in the browser, the readings that arrive (each carries its number in #live-rate) and shows their rate
RATE_JS = """
() => {
  if (window.__ferRate) return;
  window.__ferRate = {times: [], last: null};
  setInterval(() => {
    const line = document.querySelector('#live-rate');
    const out = document.querySelector('#live-delivered');
    const m = line ? line.innerText.match(/reading ([0-9]+)/) : null;
    const now = performance.now();
    if (m && m[1] !== window.__ferRate.last) { window.__ferRate.last = m[1]; window.__ferRate.times.push(now); }
    window.__ferRate.times = window.__ferRate.times.filter(t => now - t < 5000);
    const n = window.__ferRate.times.length;
    if (out && n > 1) {
      const span = (now - window.__ferRate.times[0]) / 1000;
      out.innerText = `${((n - 1) / Math.max(span, 0.001)).toFixed(1)} readings/s reach this page`;
    }
  }, 20);
}
"""


class LiveSession:
    """What the page keeps of one visitor's stream: the tracker, the smoother, the readings sent."""

    def __init__(self, window: int):
        self.tracker, self.smoother, self.count = Tracker(), Smoother(window), 0


class LiveTab:
    def __init__(self, page: Page):
        self.page = page
        gr.Markdown("Every face in view is followed and labelled with the fusion's reading; the followed face (the "
                    "largest, or the number you pick) is read by all three models below. Maps are optional here: "
                    "each costs a backward pass per model.")
        with gr.Row():
            self.cam_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                   elem_id="webcam")
            # JPEG: about 1 ms to encode a 640x480 frame against about 28 ms for Gradio's default WebP
            self.cam_out = gr.Image(label="Faces", interactive=False, format="jpeg", elem_id="live-faces")
        with gr.Row():
            self.follow = gr.Number(value=0, precision=0, minimum=0, label="Follow face (0: the largest)",
                                    elem_id="live-follow")
            self.window = gr.Slider(1, 15, value=5, step=1, label="Smoothing: readings averaged per face (1: off)",
                                    elem_id="live-window")
            self.maps = gr.Checkbox(label="Compute maps (slower)", value=False)
        self.agree = gr.Markdown(elem_id="live-agreement")
        self.doubt = gr.Markdown(elem_id="live-doubt")
        self.rate = gr.Markdown(elem_id="live-rate")
        self.delivered = gr.Markdown(elem_id="live-delivered")
        with gr.Row():
            self.labels = [gr.Label(num_top_classes=3, label=display_name(k), elem_id=f"live-{k}") for k in page.keys]
        self.session = gr.State(time_to_live=STATE_TTL_S)

    @property
    def outputs(self):
        return [self.cam_out, self.agree, self.doubt, self.rate, self.session, *self.labels]

    def read_frame(self, frame, maps: bool, window, follow, session: LiveSession | None):
        """One webcam frame: faces found and followed, labelled, the followed one read by every model."""
        if self.page.analyzer is None or frame is None:
            return {c: gr.skip() for c in self.outputs}
        window = int(window or 1)
        if not isinstance(session, LiveSession) or session.smoother.window != window:
            session = LiveSession(window)
        t0 = time.perf_counter()
        try:
            analysis = self.page.runner.live(frame, maps=maps)
        except ImageInputError:
            return {c: gr.skip() for c in self.outputs}
        ids = session.tracker.update([f.box for f in analysis.faces])
        session.smoother.forget(t.id for t in session.tracker.tracks)
        for f, track in zip(analysis.faces, ids):
            for key, m in f.models.items():
                m.probs = session.smoother(track, key, m.probs)
        session.count += 1
        rate = (f"reading {session.count}; the server reads a frame in {analysis.timings_ms['total']:.0f} ms "
                f"({1.0 / max(time.perf_counter() - t0, 1e-6):.1f}/s at most)")
        if not analysis.faces:
            return {self.cam_out: frame, self.agree: "no face in view", self.doubt: "", self.rate: rate,
                    self.session: session, **{lab: None for lab in self.labels}}
        by_track = dict(zip(ids, analysis.faces))
        followed = by_track.get(int(follow or 0)) or max(analysis.faces, key=lambda f: f.box[2] * f.box[3])
        numbers = {f.index: track for f, track in zip(analysis.faces, ids)}
        picture = draw_faces(analysis, numbers[followed.index], {f.index: caption(f) for f in analysis.faces},
                             numbers)
        return {self.cam_out: picture, self.agree: f"**Face {numbers[followed.index]}: {followed.agreement['text']}**",
                self.doubt: doubt_text(followed), self.rate: rate, self.session: session,
                **{lab: followed.models[k].probs for lab, k in zip(self.labels, self.page.keys)}}

    def wire(self, demo) -> None:
        self.cam_in.stream(self.read_frame, [self.cam_in, self.maps, self.window, self.follow, self.session],
                           self.outputs, stream_every=STREAM_EVERY_S, time_limit=300,
                           api_visibility="private", **self.page.cpu_group)
        demo.load(None, js=RATE_JS)
