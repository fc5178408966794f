"""Faces over time: tracking keeps each face's number, smoothing steadies a reading, a clip is read frame by frame
(damaged frames reported, limits enforced), and the video tab turns the readings into timelines and files."""
import json

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT, HOPPER
from fer_core.images import ImageInputError, load_image

MODELS = ("ddamfn", "resnet_dda", "fusion")


def test_the_tracker_keeps_a_face_its_number_while_others_come_and_go():
    from fer_core.tracking import Tracker

    t = Tracker(iou_threshold=0.3, max_missed=2)
    assert t.update([(0, 0, 10, 10), (100, 0, 10, 10)]) == [1, 2]
    assert t.update([(102, 1, 10, 10), (1, 1, 10, 10)]) == [2, 1]  # order on screen does not matter
    assert t.update([(3, 2, 10, 10)]) == [1]  # face 2 left the picture
    assert t.update([(50, 50, 10, 10), (4, 2, 10, 10)]) == [3, 1]  # a newcomer gets a new number
    for _ in range(3):
        t.update([])
    assert t.update([(4, 2, 10, 10)]) == [4]  # forgotten after max_missed frames


def test_smoothing_averages_the_last_readings_and_can_be_off():
    from fer_core.tracking import Smoother

    s = Smoother(window=3)
    readings = [{"happiness": 0.6, "neutral": 0.4}, {"happiness": 0.4, "neutral": 0.6},
                {"happiness": 0.7, "neutral": 0.3}]
    outs = [s(1, "m", r) for r in readings]
    assert outs[1] == {"happiness": 0.5, "neutral": 0.5} or abs(outs[1]["happiness"] - 0.5) < 1e-6
    assert abs(outs[2]["happiness"] - (0.6 + 0.4 + 0.7) / 3) < 1e-5 and next(iter(outs[2])) == "happiness"
    assert Smoother(window=1)(1, "m", readings[1]) == readings[1]
    s.forget([])
    assert s.history == {}


def _clip(path, frames, fps=10, damaged=None, size=(640, 360)):
    """Two people side by side drifting across a still background; frame ``damaged`` undecodable. Motion JPEG in
    AVI, or VP8 in WebM (what a browser plays) for a ``.webm`` path."""
    a, b = (cv2.resize(load_image(p), (160, 190)) for p in (HOPPER, ASTRONAUT))
    codec = "VP80" if str(path).endswith(".webm") else "MJPG"
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    for i in range(frames):
        canvas = np.full((size[1], size[0], 3), 90, np.uint8)
        canvas[60:250, 40 + 4 * i:200 + 4 * i] = a
        canvas[80:270, 380 - 3 * i:540 - 3 * i] = b
        wr.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    wr.release()
    if damaged is not None:
        damage_frame(path, damaged)
    return path


def damage_frame(path, index: int) -> None:
    """Zero 2,000 bytes from the start of the ``index``-th JPEG frame of an MJPG file (a frame no decoder reads)."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    data[starts[index]:starts[index] + 2000] = bytes(2000)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def analyzer(test_weights):
    from fer_core.predict import Analyzer

    return Analyzer.from_pretrained({k: test_weights / k for k in MODELS}, detector="yunet", device="cpu")


def test_a_clip_is_read_frame_by_frame_with_each_person_followed(analyzer, tmp_path):
    from fer_core.video import analyze_video, timelines

    clip = _clip(tmp_path / "two.avi", frames=12, damaged=4)
    seen = []
    records = list(analyze_video(analyzer, clip, every=2, progress=lambda done, total: seen.append((done, total))))
    assert [r["frame"] for r in records] == [0, 2, 4, 6, 8, 10] and seen[-1] == (6, 6)
    assert "error" in records[2] and all("faces" in r for i, r in enumerate(records) if i != 2)
    for r in records:
        if "faces" in r:
            assert sorted(f["track"] for f in r["faces"]) == [1, 2]
            left = min(r["faces"], key=lambda f: f["box"][0])
            assert left["track"] == 1  # Hopper, on the left, stays face 1
            assert abs(r["time_s"] - r["frame"] / 10) < 1e-6
    tl = timelines(records, analyzer.slots["ddamfn"].labels)
    assert set(tl) == {1, 2} and tl[1]["fusion"].shape == (5, 8) and len(tl[1]["time"]) == 5


def test_clips_that_cannot_be_read_are_refused_with_a_reason(tmp_path, monkeypatch):
    from fer_core import video

    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(ImageInputError, match="not a video OpenCV can read"):
        video.probe(tmp_path / "notes.mp4")
    clip = _clip(tmp_path / "long.avi", frames=30)
    monkeypatch.setattr(video, "MAX_SECONDS", 2)
    with pytest.raises(ImageInputError, match="3 s long; the limit is 2 s"):
        video.probe(clip)


def test_the_video_tab_shows_timelines_a_moment_and_files_to_take_away(analyzer, tmp_path):
    from demo.common import Page
    import gradio as gr

    from demo.video_tab import VideoTab

    clip = _clip(tmp_path / "two.avi", frames=10)
    with gr.Blocks():
        tab = VideoTab(Page.build(analyzer, concurrency=1))
    out = tab.analyse_clip(str(clip), 3, "most accurate", progress=lambda *a, **k: None)
    assert "4 frames read" in out[tab.summary] and "2 faces followed" in out[tab.summary]
    assert [c[1] for c in out[tab.track]["choices"]] == [1, 2]
    fig = out[tab.plot]
    assert len(fig.axes) == 3  # one row per model, sharing the time axis
    frame = cv2.imread(out[tab.frame])
    assert frame.shape[:2] == (360, 640)
    csv_path, json_path = out[tab.downloads]
    rows = open(csv_path).read().splitlines()
    assert rows[0].startswith("file,frame,time_s,face,model,top,confidence,uncertain,neutral")
    assert len(rows) == 1 + 4 * 2 * 3  # frames x faces x models
    assert len(json.loads(open(json_path).read())) == 4
    state = out[tab.state]
    assert tab.show_track(state, 2) is not None and tab.show_moment(state, 7) is not None


def test_the_command_line_reads_whole_clips_the_page_would_refuse(test_weights, tmp_path, monkeypatch):
    """The length limits (MAX_SECONDS, MAX_FRAMES) are the page's: fer-predict, in one process or on a cluster, reads
    a research batch's hour-long interviews whole."""
    from fer_core import video
    from fer_core.predict import cli

    clip = _clip(tmp_path / "long.avi", frames=12)  # 1.2 s at 10 frames/s
    monkeypatch.setattr(video, "MAX_SECONDS", 1)
    monkeypatch.setattr(video, "MAX_FRAMES", 6)
    with pytest.raises(ImageInputError, match="the limit is 1 s"):
        video.probe(clip)  # the page's reading refuses it
    assert [i for i, *_ in video.frames(clip, 4)] == [0, 4]  # and would stop at MAX_FRAMES
    rc = cli.main([str(clip), "--every", "4", "--detector", "yunet", "--json", str(tmp_path / "r.json"),
                   *[f"--weights={k}={test_weights / k}" for k in MODELS]])
    assert rc == 0 and [r["frame"] for r in json.loads((tmp_path / "r.json").read_text())] == [0, 4, 8]
