"""A clip, face by face over time: the frames OpenCV can read, every n-th analysed without maps, each face followed
by the tracker (:mod:`fer_core.tracking`), one record per analysed frame, yielded as it is made (the CLI writes
each at once; the page draws its timelines from them).

    for record in analyze_video(analyzer, "clip.mp4", every=5):
        ...   # {"frame", "time_s", "faces": [{"track", "box", "models": {key: {"probs", "top", ...}}}]}

Limits, the page's, said there and in errors: ``MAX_SECONDS`` of video and ``MAX_FRAMES`` frames. The command line
and the cluster path read whole files (``limits=False``: a research batch holds hour-long interviews). A frame that
cannot be decoded is reported (``{"frame": i, "error": ...}``) and skipped; the clip ends where the file ends.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import ImageInputError
from .tracking import Tracker

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
MAX_SECONDS = 120
MAX_FRAMES = 7200
MAX_BAD_IN_A_ROW = 25  # consecutive undecodable frames after which the rest of the file is taken as unreadable


@dataclass
class VideoInfo:
    frames: int  # as the container says (0 when it does not)
    fps: float
    width: int
    height: int

    @property
    def seconds(self) -> float | None:
        return self.frames / self.fps if self.fps > 0 and self.frames > 0 else None


def probe(path, limits: bool = True) -> VideoInfo:
    """What the clip is, or an :class:`ImageInputError` saying why it cannot be analysed (with ``limits``: also
    when it is longer than the page reads)."""
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"{path.name}: no such file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ImageInputError(f"{path.name}: not a video OpenCV can read (try MP4 with H.264, AVI or WebM)")
        info = VideoInfo(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                         int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0))
        ok, _ = cap.read()
        if not ok:
            raise ImageInputError(f"{path.name}: no frame could be decoded (an empty or damaged video)")
    finally:
        cap.release()
    if not limits:
        return info
    if info.seconds is not None and info.seconds > MAX_SECONDS:
        raise ImageInputError(f"{path.name}: {info.seconds:.0f} s long; the limit is {MAX_SECONDS} s "
                              f"({MAX_FRAMES} frames): cut it shorter")
    if info.frames > MAX_FRAMES:
        raise ImageInputError(f"{path.name}: {info.frames} frames; the limit is {MAX_FRAMES}")
    return info


def frames(path, every: int = 1, limits: bool = True):
    """``(index, time_s, rgb or None, error or None)`` for every ``every``-th frame, the undecodable ones with an
    error; with ``limits`` at most ``MAX_FRAMES`` frames are read, else the whole file."""
    if every < 1:
        raise ValueError(f"every must be 1 or more, got {every}")
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    i, bad, end = 0, 0, MAX_FRAMES if limits else float("inf")
    try:
        while i < end:
            wanted = i % every == 0
            ok = cap.grab()
            if not ok:
                if expected and i < expected - 1 and bad < MAX_BAD_IN_A_ROW:  # a damaged frame, not the end
                    bad += 1
                    if wanted:
                        yield i, (i / fps if fps else None), None, "the frame could not be decoded"
                    i += 1
                    continue
                break
            bad = 0
            if wanted:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    yield i, (i / fps if fps else None), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None
                else:
                    yield i, (i / fps if fps else None), None, "the frame could not be decoded"
            i += 1
    finally:
        cap.release()


def analyze_video(analyzer, path, every: int = 5, setting: str = "accurate", tracker: Tracker | None = None,
                  progress=None, limits: bool = True):
    """One record per analysed frame, as it is made; ``progress(done, total)`` after each (total may be None);
    ``limits``: the page's (``MAX_SECONDS``, ``MAX_FRAMES``), else the whole file."""
    info = probe(path, limits)
    tracker = tracker or Tracker()
    total = (info.frames + every - 1) // every if info.frames else None
    done = 0
    for index, t, rgb, error in frames(path, every, limits):
        if rgb is None:
            record = {"frame": index, "time_s": t, "error": error}
        else:
            t0 = time.perf_counter()
            a = analyzer.analyze(rgb, setting=setting)
            ids = tracker.update([f.box for f in a.faces])
            record = {"frame": index, "time_s": None if t is None else round(t, 3),
                      "faces": [dict(f.to_json(), track=track) for f, track in zip(a.faces, ids)],
                      "ms": round((time.perf_counter() - t0) * 1000, 1)}
        done += 1
        if progress is not None:
            progress(done, total)
        yield record


def timelines(records, labels) -> dict:
    """Per track and model, the probability of each class over time: ``{track: {"time": [...], key: N x C}}``."""
    out: dict = {}
    for rec in records:
        for face in rec.get("faces", []):
            tl = out.setdefault(face["track"], {"time": []})
            tl["time"].append(rec["time_s"] if rec["time_s"] is not None else rec["frame"])
            for key, m in face["models"].items():
                tl.setdefault(key, []).append([m["probs"].get(c, 0.0) for c in labels])
    return {track: {k: (np.array(v) if k != "time" else v) for k, v in tl.items()} for track, tl in out.items()}
