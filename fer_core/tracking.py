"""Faces over time: an identity per face across the frames of a clip or a stream, and each face's readings
smoothed over a short window.

Matching is by box overlap (IoU), greedily from the best-overlapping pair down, without appearance features:
enough for the faces of one clip or one webcam, and no new dependency. A face unseen for ``max_missed``
consecutive frames is forgotten; a face that appears gets the next number, so a person is "face 2" for as
long as they stay in view.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


def iou(a, b) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    id: int
    box: tuple
    missed: int = 0


@dataclass
class Tracker:
    iou_threshold: float = 0.3
    max_missed: int = 10
    tracks: list = field(default_factory=list)
    next_id: int = 1

    def update(self, boxes) -> list[int]:
        """The track id of each box of a new frame (in the boxes' order)."""
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        used = set()
        for overlap, ti, bi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used or ids[bi] is not None:
                continue
            used.add(ti)
            ids[bi] = self.tracks[ti].id
            self.tracks[ti].box, self.tracks[ti].missed = tuple(boxes[bi]), 0
        for ti, t in enumerate(self.tracks):
            if ti not in used:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for bi, b in enumerate(boxes):
            if ids[bi] is None:
                ids[bi] = self.next_id
                self.tracks.append(_Track(self.next_id, tuple(b)))
                self.next_id += 1
        return ids


class Smoother:
    """Per track and model, the mean of the last ``window`` probability vectors (``window`` 1: off)."""

    def __init__(self, window: int = 5):
        self.window = max(1, int(window))
        self.history: dict = {}

    def __call__(self, track: int, key: str, probs: dict[str, float]) -> dict[str, float]:
        if self.window == 1:
            return probs
        names = sorted(probs)
        h = self.history.setdefault((track, key), deque(maxlen=self.window))
        h.append(np.array([probs[n] for n in names]))
        mean = np.mean(h, 0)
        return {names[i]: round(float(mean[i]), 5) for i in np.argsort(-mean)}

    def forget(self, live_tracks) -> None:
        """Drop the history of tracks no longer followed."""
        live = set(live_tracks)
        for k in [k for k in self.history if k[0] not in live]:
            del self.history[k]
