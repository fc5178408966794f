"""Drawing for the UI: numbered face boxes, heat-map overlays, label dictionaries, short texts."""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fer_core.explain import overlay
from fer_core.files import write_bytes_atomic
from fer_core.predict import DISPLAY_NAMES

BOX_COLOURS = [(46, 204, 113), (52, 152, 219), (231, 76, 60), (241, 196, 15), (155, 89, 182)]


def draw_faces(rgb: np.ndarray, result: dict, selected: int | None = None) -> np.ndarray:
    out = rgb.copy()
    scale = max(1.0, max(rgb.shape[:2]) / 600)
    for f in result["faces"]:
        x, y, w, h = (int(round(v)) for v in f["box"])
        colour = BOX_COLOURS[(f["index"] - 1) % len(BOX_COLOURS)]
        thick = int(round((4 if f["index"] == selected else 2) * scale))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        if f.get("landmarks"):
            for px, py in f["landmarks"]:
                cv2.circle(out, (int(px), int(py)), max(1, int(2 * scale)), colour, -1)
        label = str(f["index"])
        fs = 0.8 * scale
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, max(1, int(2 * scale)))
        cv2.rectangle(out, (x, max(0, y - th - 8)), (x + tw + 8, y), colour, -1)
        cv2.putText(out, label, (x + 4, y - 4), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), max(1, int(2 * scale)))
    return out


def model_views(face: dict, key: str):
    """(Grad-CAM overlay, own-attention overlay) for one model of one face, or (None, None) without maps."""
    m = face["models"][key]
    crop = face["crops"][key]
    if "gradcam" not in m:
        return None, None
    return to_file(overlay(crop, m["gradcam"])), to_file(overlay(crop, m["attention"]))


def label_dict(face: dict, key: str) -> dict:
    return dict(face["models"][key]["probs"])


def branch_text(face: dict) -> str:
    w = face["models"]["fusion"].get("branch_weights")
    if not w:
        return ""
    bar = lambda v: "█" * int(round(20 * v))  # noqa: E731
    return ("**How much each branch counted**\n\n"
            f"`{DISPLAY_NAMES['ddamfn']:>10}` {bar(w['ddamfn'])} {100 * w['ddamfn']:.0f}%\n\n"
            f"`{DISPLAY_NAMES['resnet_dda']:>10}` {bar(w['resnet_dda'])} {100 * w['resnet_dda']:.0f}%")


def timings_text(result: dict) -> str:
    t = result.get("timings_ms", {})
    parts = [f"{k} {v:.0f} ms" for k, v in t.items() if k != "total"]
    return f"**{t.get('total', 0):.0f} ms** in all ({', '.join(parts)}); detector: {result.get('detector')}"


OUT_DIR = Path(tempfile.gettempdir()) / f"fer_demo_{os.getpid()}"
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
    data = buf.tobytes()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{hashlib.sha1(data).hexdigest()}.png"
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
    for p in OUT_DIR.glob("*.png"):
        try:
            if now - p.stat().st_mtime > MAX_AGE_S:
                p.unlink()
        except OSError:
            pass
