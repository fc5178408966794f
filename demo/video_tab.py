"""The video tab: a clip (what OpenCV reads; at most MAX_SECONDS s and MAX_FRAMES frames) analysed every n-th
frame without maps, with a progress bar; every face followed (:mod:`fer_core.tracking`); per face a timeline of
each model's probability of each class over time, the frame at any moment with its boxes, and every reading as
CSV and JSON to take away. The same code as the CLI (:mod:`fer_core.video`)."""
from __future__ import annotations

import time

import cv2
import gradio as gr

from fer_core.images import ImageInputError
from fer_core.video import MAX_FRAMES, MAX_SECONDS, analyze_video, timelines

from .common import READINGS, STATE_TTL_S, Page
from .render import draw_boxes, records_files, timeline_figure, to_file

LIMITS = (f"Up to {MAX_SECONDS} s and {MAX_FRAMES} frames; MP4 (H.264), WebM, AVI, MOV, MKV: what OpenCV reads. "
          "Every n-th frame is read without maps (about 25 ms per face and frame on a 2-core CPU, plus finding the "
          "faces), each face followed across frames. A clip your browser cannot play (often AVI or MKV) shows "
          "\"Video not playable\" in its preview but is analysed all the same.")


class VideoTab:
    def __init__(self, page: Page):
        self.page = page
        gr.Markdown(f"Upload a clip: how each model saw each face change over time. {LIMITS}")
        with gr.Row():
            with gr.Column():
                self.video = gr.Video(sources=["upload"], label="Clip", elem_id="video-input", height=300)
                self.every = gr.Slider(1, 30, value=5, step=1, label="Read every n-th frame", elem_id="video-every")
                self.reading = gr.Radio(list(READINGS), value=list(READINGS)[0], label="Reading",
                                        info=page.reading_info)
                self.run = gr.Button("Analyse the clip", variant="primary", elem_id="video-run")
            with gr.Column():
                self.summary = gr.Markdown(elem_id="video-summary")
                self.track = gr.Dropdown([], label="Face", elem_id="video-face", interactive=True)
                self.moment = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="video-moment",
                                        interactive=True)
                self.frame = gr.Image(label="The frame, faces numbered as in the timeline", interactive=False,
                                      elem_id="video-frame", height=300)
        self.plot = gr.Plot(label="Each model's probability of each class over time", elem_id="video-timeline")
        self.downloads = gr.File(label="Every reading: CSV and JSON", file_count="multiple", interactive=False,
                                 elem_id="video-downloads")
        self.state = gr.State(time_to_live=STATE_TTL_S)  # {"path", "records", "timelines"}

    # -- handlers ------------------------------------------------------------------------------------------------
    def analyse_clip(self, video, every, read_as, progress=gr.Progress()):
        self.page.ready()
        if not video:
            raise gr.Error("Upload a clip first.")
        records, t0 = [], time.perf_counter()

        def tick(done, total):
            progress(done / total if total else None, desc=f"frame {done}" + (f" of {total}" if total else ""))

        try:
            for rec in analyze_video(self.page.analyzer, video, int(every), READINGS[read_as], progress=tick):
                records.append(rec)
        except ImageInputError as e:
            raise gr.Error(str(e)) from None
        seconds = time.perf_counter() - t0
        tl = timelines(records, self.page.labels)
        bad = [r["frame"] for r in records if "error" in r]
        read = len(records) - len(bad)
        tracks = sorted(tl)
        summary = (f"**{read} frames read** (every {int(every)}th) in {seconds:.1f} s: {read / max(seconds, 1e-9):.1f} "
                   f"frames/s; {len(tracks)} face{'s' if len(tracks) != 1 else ''} followed"
                   + (f"; {len(bad)} frames could not be decoded ({', '.join(map(str, bad[:10]))}"
                      f"{' ...' if len(bad) > 10 else ''}) and were skipped" if bad else ""))
        state = {"path": video, "records": records, "timelines": tl}
        last = max((r["frame"] for r in records), default=0)
        return {self.summary: summary, self.state: state,
                self.track: gr.update(choices=[(f"face {t}", t) for t in tracks], value=tracks[0] if tracks else None),
                self.moment: gr.update(minimum=0, maximum=max(last, 1), value=0, step=max(1, int(every))),
                self.plot: self._figure(state, tracks[0]) if tracks else None,
                self.frame: self._moment(state, 0), self.downloads: self._downloads(records)}

    def _figure(self, state, track):
        if track is None or track not in state["timelines"]:
            return None
        return timeline_figure(state["timelines"][track], self.page.labels, self.page.keys, f"face {track}")

    def _moment(self, state, frame):
        """The analysed frame nearest ``frame``, decoded again, with each face's box, number and fusion reading."""
        done = [r for r in state["records"] if "faces" in r]
        if not done:
            return None
        rec = min(done, key=lambda r: abs(r["frame"] - int(frame)))
        cap = cv2.VideoCapture(state["path"])
        cap.set(cv2.CAP_PROP_POS_FRAMES, rec["frame"])
        ok, bgr = cap.read()
        cap.release()
        if not ok:
            return None
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        boxes = []
        for f in rec["faces"]:
            m = f["models"].get("fusion") or next(iter(f["models"].values()))
            boxes.append((f["track"], f["box"], f.get("landmarks"),
                          f"{m['top']} {m['confidence']:.2f}" + (" ?" if f.get("uncertain") else "")))
        rgb = draw_boxes(rgb, boxes)
        scale = max(1.0, max(rgb.shape[:2]) / 600)
        t = rec.get("time_s")
        cv2.putText(rgb, f"frame {rec['frame']}" + (f", {t:.2f} s" if t is not None else ""), (8, rgb.shape[0] - 10),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), max(1, int(2 * scale)))
        return to_file(rgb)

    def _downloads(self, records) -> list[str]:
        return records_files([{"file": "clip", **r} for r in records], self.page.labels, "readings")

    def show_track(self, state, track):
        if not isinstance(state, dict):
            return gr.skip()
        return self._figure(state, track)

    def show_moment(self, state, frame):
        if not isinstance(state, dict):
            return gr.skip()
        return self._moment(state, frame)

    def wire(self) -> None:
        self.run.click(self.analyse_clip, [self.video, self.every, self.reading],
                       [self.summary, self.state, self.track, self.moment, self.plot, self.frame, self.downloads],
                       api_visibility="private", **self.page.cpu_group)
        self.track.change(self.show_track, [self.state, self.track], self.plot, api_visibility="private")
        self.moment.release(self.show_moment, [self.state, self.moment], self.frame, api_visibility="private")
