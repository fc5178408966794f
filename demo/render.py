"""Pictures for the page: numbered face boxes, maps over the face, the model's input, a colour scale, the face x
model table, and PNG files Gradio can serve safely."""
from __future__ import annotations

import atexit
import hashlib
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fer_core.explain import is_blank, overlay
from fer_core.files import write_bytes_atomic
from fer_core.images import gray_to_rgb
from fer_core.records import records_text
from fer_core.results import Analysis, ModelResult, display_name

BOX_COLOURS = [(46, 204, 113), (52, 152, 219), (231, 76, 60), (241, 196, 15), (155, 89, 182)]
MAP_SIZE = 224  # every map on the page is shown at least this large
MAP_MODES = ("over the face", "map alone")


def draw_faces(analysis: Analysis, selected: int | None = None, captions: dict | None = None,
               numbers: dict | None = None) -> np.ndarray:
    """The photo with a numbered box (and YuNet's landmarks) per face; the selected face's box is thicker.
    ``captions`` (face index -> text) writes a reading beside each number; ``numbers`` (face index -> the number
    to show, e.g. a tracked face's) replaces the left-to-right index."""
    return draw_boxes(analysis.image, [((numbers or {}).get(f.index, f.index), f.box, f.landmarks,
                                        (captions or {}).get(f.index)) for f in analysis.faces], selected)


def draw_boxes(rgb: np.ndarray, boxes, selected: int | None = None) -> np.ndarray:
    """A copy of ``rgb`` with each face's box drawn: ``boxes`` holds ``(number, [x, y, w, h], landmarks or None,
    caption or None)``; the number picks the colour (the same face keeps its colour over a clip), the selected
    number's box is thicker. The one drawer of face boxes, for photos and for a clip's frames."""
    out = rgb.copy()
    scale = max(1.0, max(rgb.shape[:2]) / 600)
    for number, box, landmarks, text in boxes:
        x, y, w, h = (int(round(v)) for v in box)
        colour = BOX_COLOURS[(number - 1) % len(BOX_COLOURS)]
        thick = int(round((4 if number == selected else 2) * scale))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        for px, py in landmarks or []:
            cv2.circle(out, (int(px), int(py)), max(1, int(2 * scale)), colour, -1)
        label = str(number) + (f" {text}" if text else "")
        fs = 0.8 * scale
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, max(1, int(2 * scale)))
        cv2.rectangle(out, (x, max(0, y - th - 8)), (x + tw + 8, y), colour, -1)
        cv2.putText(out, label, (x + 4, y - 4), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), max(1, int(2 * scale)))
    return out


def caption(face, key: str = "fusion") -> str:
    """A face's reading in a few characters: the model's top label and confidence, '?' when in doubt."""
    m = face.models.get(key) or next(iter(face.models.values()))
    return f"{m.top} {m.confidence:.2f}" + (" ?" if face.doubts else "")


def doubt_text(face) -> str:
    return ("**Uncertain:** " + "; ".join(face.doubts) + ".") if face.doubts else ""


CLASS_COLOURS = ["#9e9e9e", "#f4c20d", "#ff8f00", "#3f51b5", "#d32f2f", "#2e7d32", "#7b1fa2", "#00838f"]


def timeline_figure(timeline: dict, labels, keys, title: str = ""):
    """One face's readings over time: per model (rows, sharing the time axis) the probability of each class,
    stacked, in the same colours for every model, so that the three can be compared at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if k in timeline]
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 1.6 + 1.5 * len(keys)), sharex=True, squeeze=False)
    t = np.asarray(timeline["time"], dtype=float)
    for ax, key in zip(axes[:, 0], keys):
        probs = np.asarray(timeline[key])
        ax.stackplot(t, probs.T, colors=CLASS_COLOURS[:len(labels)], labels=labels, step="mid" if len(t) < 3 else None)
        ax.set_ylim(0, 1)
        ax.set_xlim(t.min(), max(t.max(), t.min() + 1e-3))
        ax.set_ylabel(display_name(key), rotation=0, ha="right", va="center")
        ax.set_yticks([0, 0.5, 1])
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(loc="upper center", bbox_to_anchor=(0.5, 1.45), ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, y=0.995, fontsize=10)
    fig.tight_layout()
    return fig


def analysis_downloads(analysis: Analysis, annotated: np.ndarray, labels) -> list[str]:
    """The analysis as JSON and CSV (:mod:`fer_core.records`, as the CLI writes them), and the annotated image, as
    files to download (named by their content)."""
    return [*records_files([{"file": "photo", "frame": None, **analysis.to_json()}], labels, "analysis"),
            to_file(annotated)]


def records_files(records, labels, stem: str) -> list[str]:
    """Records as a CSV and a JSON file to download (:func:`fer_core.records.records_text`)."""
    json_text, csv_text = records_text(records, labels)
    return [to_file_bytes(csv_text.encode(), stem, ".csv"), to_file_bytes(json_text.encode(), stem, ".json")]


def input_view(m: ModelResult, size: int = MAP_SIZE) -> np.ndarray:
    """What the model saw, whole, at its true resolution scaled up by a whole factor without smoothing."""
    img = m.input_image
    k = max(1, math.ceil(size / img.shape[0]))
    return gray_to_rgb(cv2.resize(img, (img.shape[1] * k, img.shape[0] * k), interpolation=cv2.INTER_NEAREST))


def map_view(m: ModelResult, kind: str, mode: str = MAP_MODES[0]) -> np.ndarray | None:
    """A Grad-CAM or own-attention map (``kind``) at the map size, over the model's input or alone (the same
    JET colours as :func:`colour_scale`); a map that is zero everywhere is said to be so (:func:`blank_view`),
    not drawn as a blue square."""
    heat = getattr(m, kind)
    if heat is None:
        return None
    if is_blank(heat):
        return blank_view(m, heat.shape[0])
    if mode == MAP_MODES[1]:
        return cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    face = cv2.resize(m.input_image, heat.shape[::-1], interpolation=cv2.INTER_NEAREST)
    return overlay(face, heat)


BLANK_TEXT = ("no map:", "zero everywhere", "for this label")


def blank_view(m: ModelResult, size: int = MAP_SIZE) -> np.ndarray:
    """In place of a map that is zero everywhere (nothing to show, not 'no weight anywhere'): the model's input,
    faded, with those words over it, large enough to read at the compact view's size."""
    face = cv2.resize(gray_to_rgb(m.input_image), (size, size), interpolation=cv2.INTER_NEAREST)
    out = (0.35 * face + 0.65 * 235).astype(np.uint8)
    fs, thick = size / 260, max(1, round(size / 110))
    for i, line in enumerate(BLANK_TEXT):
        (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
        y = int(size * (0.38 + 0.16 * i))
        cv2.putText(out, line, ((size - tw) // 2, y), cv2.FONT_HERSHEY_SIMPLEX, fs, (30, 30, 30), thick, cv2.LINE_AA)
    return out


def colour_scale(width: int = 3 * MAP_SIZE, height: int = 44) -> np.ndarray:
    """The maps' colour scale, from 'little weight' (blue) to 'most weight' (red)."""
    bar = cv2.applyColorMap(np.tile(np.linspace(0, 255, width).astype(np.uint8), (18, 1)), cv2.COLORMAP_JET)
    out = np.full((height, width, 3), 255, np.uint8)
    out[:18] = cv2.cvtColor(bar, cv2.COLOR_BGR2RGB)
    for text, x in (("little weight", 2), ("most weight", width - 100)):
        cv2.putText(out, text, (x, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    return out


def faces_table(analysis: Analysis) -> list[list[str]]:
    """One row per face: its number, then each model's top label and confidence."""
    return [[str(f.index)] + [f"{m.top} ({m.confidence:.2f})" for m in f.models.values()] for f in analysis.faces]


def table_headers(keys) -> list[str]:
    return ["face"] + [display_name(k) for k in keys]


def branch_weights(m: ModelResult) -> dict[str, float] | None:
    """A fusion's branch weights as a gr.Label value (bars), keyed by display name."""
    return None if m.branch_weights is None else {display_name(k): v for k, v in m.branch_weights.items()}


def timings_text(analysis: Analysis) -> str:
    t = analysis.timings_ms
    stages = ("decode", "detect", "crop")
    parts = [f"{k} {t[k]:.0f} ms" for k in stages if k in t]
    each = [f"{display_name(k)} {v:.0f}" for k, v in t.items() if k not in stages + ("total", "models")]
    if "models" in t:  # the branches may read side by side: their times overlap
        parts.append(f"models {t['models']:.0f} ms ({', '.join(each)})")
    return f"**{t.get('total', 0):.0f} ms** in all ({', '.join(parts)}); detector: {analysis.detector}"


OUT_DIR = Path(tempfile.gettempdir()) / f"fer_demo_{os.getpid()}"
atexit.register(shutil.rmtree, OUT_DIR, ignore_errors=True)  # this process's pictures go with it
MAX_AGE_S = 3600


def to_file(img: np.ndarray | None) -> str | None:
    """Write an RGB/gray uint8 image as a PNG named by its content (atomically) and return the path.

    Gradio saves returned arrays by rewriting one content-addressed file in place, so concurrent requests with
    identical outputs can read it half-written; a returned path is copied into its cache once, atomically."""
    if img is None:
        return None
    ok, buf = cv2.imencode(".png", img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode an output image")
    return to_file_bytes(buf.tobytes(), "image", ".png")


def to_file_bytes(data: bytes, stem: str, suffix: str) -> str:
    """Bytes as a file named by their content (``stem-<sha1>.suffix``), written once, atomically."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{stem}-{hashlib.sha1(data).hexdigest()[:16]}{suffix}"
    if not path.exists():
        write_bytes_atomic(path, data)
        _prune()
    return str(path)


_last_prune = [0.0]


def _prune():
    now = time.time()
    if now - _last_prune[0] < 60:
        return
    _last_prune[0] = now
    for p in OUT_DIR.glob("*.*"):
        try:
            if now - p.stat().st_mtime > MAX_AGE_S:
                p.unlink()
        except OSError:
            pass
