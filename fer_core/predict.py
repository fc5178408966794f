"""The one prediction pipeline shared by the app, the CLI and the benchmarks.

    image -> faces (detect, then crop and align per model config) -> models (calibrated probabilities, Grad-CAM,
    own attention; a fusion reuses its branches' forward passes) -> an :class:`~fer_core.results.Analysis`

CLI::

    python -m fer_core.predict photo.jpg [more.jpg folder/ clip.mp4] [--json out.json] [--every 10]

Images and folders give one JSON record per image; a video gives one record per n-th frame (``--every``), and
``--csv`` writes the per-frame top labels. Models default to the shipped weights (``ddamfn``, ``resnet_dda``,
``fusion``); ``--weights key=PATH`` points a key elsewhere.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.augment import eval_transform
from .explain import gradcam_from_leaves, gradcam_with_details, model_lock, own_attention, resize_maps
from .faces import crop_face, detect_faces, make_detector
from .images import ImageInputError, load_image
from .results import Analysis, FaceResult, ModelResult, display_name

MODEL_KEYS = ("ddamfn", "resnet_dda", "fusion")  # the shipped weights, in the order the page shows them


@dataclass
class Slot:
    """A loaded model with the preprocessing its config asks for."""

    key: str
    model: torch.nn.Module
    labels: list[str]
    size: int
    mean: tuple
    std: tuple
    grayscale: bool
    crop: dict
    source_size: int
    temperature: float
    tta_flip: bool

    @classmethod
    def from_model(cls, key, model):
        c = model.pretrained_cfg
        crop = dict(c.get("crop") or {})
        return cls(key, model.eval(), list(c["label_names"]), int(c["input_size"][1]), tuple(c["mean"]),
                   tuple(c["std"]), bool(c.get("grayscale", True)), crop,
                   int(crop.get("source_size", c["input_size"][1])), float(c.get("temperature", 1.0)),
                   bool(c.get("tta_flip", False)))

    def crop_key(self):
        return (self.source_size, self.grayscale, tuple(sorted(self.crop.items())))

    def batch(self, crops, flip: bool = False) -> torch.Tensor:
        """Face crops -> the model's input tensor (resized and normalised exactly as in training)."""
        return eval_transform(torch.from_numpy(np.stack(crops)), self.size, self.mean, self.std, flip)

    def seen(self, x: torch.Tensor) -> list[np.ndarray]:
        """The input tensor back as uint8 images at the model's input size: what the model saw."""
        m = torch.as_tensor(self.mean).view(1, -1, 1, 1)
        s = torch.as_tensor(self.std).view(1, -1, 1, 1)
        img = (x.detach().cpu() * s + m).clamp(0, 1).mul(255).round().to(torch.uint8)
        img = img[:, 0] if self.grayscale else img.permute(0, 2, 3, 1)
        return list(img.numpy())


@dataclass
class _Pass:
    """One model's forward pass over the faces of an image, kept for a fusion that reuses it. With test-time
    flip the batch holds the faces, then their mirror images (one forward for both views: on a CPU, a batch of
    two costs far less than two batches of one, these models being bound by reading their weights)."""

    details: dict  # rows: the faces (then their flipped views)
    leaves: list  # Grad-CAM target activations whose graph to the logits is kept (maps only)
    crops: list


def _rows(obj, n: int):
    """The first ``n`` rows of every tensor in a (nested) forward-details structure."""
    if isinstance(obj, dict):
        return {k: _rows(v, n) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rows(v, n) for v in obj)
    return obj[:n] if isinstance(obj, torch.Tensor) and obj.dim() > 0 else obj


def _view_logits(logits: torch.Tensor, n: int) -> torch.Tensor:
    """Logits of the faces, averaged with their flipped views' when the batch holds both."""
    return logits[:n] if len(logits) == n else (logits[:n] + logits[n:2 * n]) / 2


class Analyzer:
    """Holds the models and the face detector; :meth:`analyze` runs the pipeline on one image.

    A fusion whose branches are themselves models of this analyzer (the same modules, as
    :meth:`from_pretrained` loads them) fuses their forward passes instead of running them again."""

    def __init__(self, models: dict, detector="auto", max_faces: int = 10, min_face: int = 20):
        self.slots = {k: Slot.from_model(k, m) for k, m in models.items()}
        self.detector, self.detector_note = make_detector(detector) if isinstance(detector, str) else (detector, "")
        self.max_faces, self.min_face = max_faces, min_face
        self.sources = {}  # fusion key -> the keys of the slots holding its two branches
        for key, slot in self.slots.items():
            if not hasattr(slot.model, "fuse"):
                continue
            found = tuple(next((k for k, s in self.slots.items() if s.model is branch), None)
                          for branch in (slot.model.branch_a, slot.model.branch_b))
            if None in found:
                continue
            for k in found:
                if self.slots[k].labels != slot.labels:
                    raise ValueError(f"{k} and {key} have different labels")
            if any(self.slots[k].tta_flip != slot.tta_flip for k in found):
                continue  # the branches' passes hold other views than the fusion needs: it runs on its own
            self.sources[key] = found

    @classmethod
    def from_pretrained(cls, names: dict | None = None, **kw):
        """Load weights by name or path (``{key: name_or_path}``, default the shipped three); a fusion takes the
        branch modules loaded before it instead of loading its own copies."""
        from .weights import load_pretrained

        models = {}
        for key, name in (names or {k: k for k in MODEL_KEYS}).items():
            models[key] = load_pretrained(name, reuse=list(models.values()))
        return cls(models, **kw)

    # -- the pipeline ------------------------------------------------------------------------------------------
    def analyze(self, image, *, maps: bool = True, whole_image_if_none: bool = False, target: str | None = None,
                display_size: int = 224) -> Analysis:
        """Run everything on one image (path, bytes, PIL image or array). ``maps=False`` skips Grad-CAM and
        attention maps (live mode). ``target`` names the class Grad-CAM explains (default: each model's top)."""
        t = {}
        t0 = time.perf_counter()
        rgb = load_image(image)
        t["decode"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        det = detect_faces(rgb, self.detector, max_faces=self.max_faces, min_face=self.min_face,
                           whole_image_if_none=whole_image_if_none)
        t["detect"] = time.perf_counter() - t1
        notes = ([self.detector_note] if self.detector_note else []) + det.notes
        faces = [FaceResult(i + 1, **f.to_json()) for i, f in enumerate(det.faces)]
        result = Analysis(rgb, det.detector, faces, notes, {})
        if not faces:
            notes.append("no face found (try 'treat the whole image as one face')")
        else:
            t1 = time.perf_counter()
            crops = {}  # one crop per distinct crop spec
            for slot in self.slots.values():
                if slot.crop_key() not in crops:
                    crops[slot.crop_key()] = [crop_face(rgb, f, slot.crop, slot.source_size, slot.grayscale)
                                              for f in det.faces]
            t["crop"] = time.perf_counter() - t1
            passes = {}
            for key, slot in sorted(self.slots.items(), key=lambda kv: kv[0] in self.sources):  # branches first
                t1 = time.perf_counter()
                if key in self.sources:
                    a, b = (passes[k] for k in self.sources[key])
                    results = self._fuse(slot, a, b, maps, target, display_size)
                else:
                    passes[key], results = self._run(slot, crops[slot.crop_key()], maps, target, display_size)
                for face, r in zip(faces, results):
                    face.models[key] = r
                t[key] = time.perf_counter() - t1
        t["total"] = time.perf_counter() - t0
        result.timings_ms = {k: round(v * 1000, 1) for k, v in t.items()}
        result.faces = faces
        return result

    @staticmethod
    def _probs(slot: Slot, logits) -> list[dict]:
        """Calibrated probabilities per face, highest first."""
        p = (logits.detach() / slot.temperature).softmax(1).cpu().numpy()
        return [{slot.labels[j]: round(float(row[j]), 5) for j in np.argsort(-row)} for row in p]

    def _run(self, slot: Slot, crops, maps, target, display_size):
        """One model on its own: one forward (of the faces and, with test-time flip, their mirror images) serves
        logits, own attention and (with maps) a cheap Grad-CAM."""
        n = len(crops)
        x = slot.batch(crops)
        batch = torch.cat([x, slot.batch(crops, flip=True)]) if slot.tta_flip else x
        if maps:
            classes = None if target is None else [slot.labels.index(target)] * len(batch)
            cams, det, leaves = gradcam_with_details(slot.model, batch, classes)  # rows are independent (eval)
            cams = resize_maps(torch.from_numpy(cams[:n]), display_size)
        else:
            with model_lock(slot.model), torch.inference_mode():
                det = slot.model.forward_details(batch)
            cams, leaves = None, []
        faces = _rows(det, n)
        if maps and "branches" in faces:  # a fusion run on its own: its branches' maps, mixed by its weights
            att = self._mixed_attention(faces["branches"]["a"], faces["branches"]["b"], faces["branch_weights"],
                                        display_size)
        else:
            att = own_attention(faces["attention"], display_size) if maps else None
        weights = faces["branch_weights"].detach() if "branch_weights" in faces else None
        probs = self._probs(slot, _view_logits(det["logits"], n))
        results = [ModelResult(slot.key, p, seen,
                               gradcam=None if cams is None else cams[i], attention=None if att is None else att[i],
                               branch_weights=None if weights is None else self._weights(slot, weights[i]))
                   for i, (p, seen) in enumerate(zip(probs, slot.seen(x)))]
        return _Pass(det, leaves, crops), results

    def _fuse(self, slot: Slot, a: _Pass, b: _Pass, maps, target, display_size):
        """A fusion from its branches' passes: fused logits, Grad-CAM through the reused activations, the
        branches' own attention mixed by the per-face branch weights."""
        fusion, n = slot.model, len(a.crops)
        with model_lock(fusion), torch.enable_grad() if maps else torch.inference_mode():
            out = fusion.fuse(a.details, b.details)
        cams = att = None
        w = out["branch_weights"].detach()[:n]
        if maps:
            k = out["logits"].detach()[:n].argmax(1) if target is None else torch.full(
                (n,), slot.labels.index(target), dtype=torch.long)
            cams = gradcam_from_leaves(out["logits"][:n].gather(1, k[:, None]), a.leaves + b.leaves,
                                       display_size)[:n]
            att = self._mixed_attention(_rows(a.details, n), _rows(b.details, n), w, display_size)
        x = slot.batch(a.crops)
        return [ModelResult(slot.key, p, seen, gradcam=None if cams is None else cams[i],
                            attention=None if att is None else att[i], branch_weights=self._weights(slot, w[i]))
                for i, (p, seen) in enumerate(zip(self._probs(slot, _view_logits(out["logits"], n)), slot.seen(x)))]

    @staticmethod
    def _mixed_attention(det_a: dict, det_b: dict, weights, size) -> np.ndarray:
        w = weights.detach().cpu().numpy()[:, :, None, None]
        return (w[:, 0] * own_attention(det_a["attention"], size)
                + w[:, 1] * own_attention(det_b["attention"], size)).astype(np.float32)

    def _weights(self, slot: Slot, w) -> dict:
        names = self.sources.get(slot.key, ("branch_a", "branch_b"))
        return {names[0]: round(float(w[0]), 4), names[1]: round(float(w[1]), 4)}


# -- CLI ---------------------------------------------------------------------------------------------------------

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def _inputs(paths):
    for p in map(Path, paths):
        if p.is_dir():
            yield from (q for q in sorted(p.rglob("*")) if q.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        else:
            yield p


def _video_frames(path: Path, every: int):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageInputError(f"{path}: cannot open the video")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % every == 0:
                yield i, (i / fps if fps else None), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), n
            i += 1
    finally:
        cap.release()


def main(argv=None) -> int:
    from tqdm.auto import tqdm

    ap = argparse.ArgumentParser(description="Facial expressions of the faces in images, folders and videos.")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--csv", default=None, help="write one row per face (file, frame, face, model, top, confidence)")
    ap.add_argument("--every", type=int, default=10, help="videos: analyse every n-th frame")
    ap.add_argument("--maps", action="store_true", help="also compute Grad-CAM and attention (slower)")
    ap.add_argument("--whole-image", action="store_true", help="no face found: use the whole image")
    ap.add_argument("--detector", default="auto", choices=("auto", "yunet", "haar"))
    ap.add_argument("--weights", action="append", default=[], help="KEY=NAME_OR_PATH, e.g. ddamfn=runs/x/export")
    ap.add_argument("--models", default=",".join(MODEL_KEYS))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("FER_THREADS", "2")))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = {k: k for k in a.models.split(",")}
    names.update(dict(kv.split("=", 1) for kv in a.weights))
    analyzer = Analyzer.from_pretrained(names, detector=a.detector)
    records, rows = [], []
    files = list(_inputs(a.paths))
    for path in tqdm(files, desc="files", unit="file", disable=len(files) < 2):
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                frames = _video_frames(path, a.every)
                first = next(frames, None)
                total = first[3] if first else 0
                bar = tqdm(total=(total // a.every + 1) if total else None, desc=path.name, unit="frame")
                for i, ts, rgb, _ in _chain(first, frames):
                    r = analyzer.analyze(rgb, maps=a.maps, whole_image_if_none=a.whole_image).to_json()
                    records.append({"file": str(path), "frame": i, "time_s": ts, **r})
                    bar.update(1)
                bar.close()
            else:
                r = analyzer.analyze(path, maps=a.maps, whole_image_if_none=a.whole_image).to_json()
                records.append({"file": str(path), "frame": None, **r})
        except ImageInputError as e:
            records.append({"file": str(path), "error": str(e)})
            print(f"{path}: {e}", file=sys.stderr)
    for rec in records:
        for f in rec.get("faces", []):
            for k, m in f["models"].items():
                rows.append([rec["file"], rec["frame"], f["index"], k, m["top"], m["confidence"]])
        if len(files) == 1 and rec.get("frame") is None:
            for f in rec.get("faces", []):
                print(f"face {f['index']} {f['box']}: " + ", ".join(
                    f"{display_name(k)} {m['top']} ({m['confidence']:.2f})" for k, m in f["models"].items())
                    + f" | {f['agreement']['text']}")
            for n in rec.get("notes", []):
                print("note:", n)
    if a.json:
        Path(a.json).write_text(json.dumps(records, indent=2))
    if a.csv:
        import csv

        with open(a.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "frame", "face", "model", "top", "confidence"])
            w.writerows(rows)
    return 1 if any("error" in r for r in records) else 0


def _chain(first, rest):
    if first is not None:
        yield first
        yield from rest


if __name__ == "__main__":
    raise SystemExit(main())
