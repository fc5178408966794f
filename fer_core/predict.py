"""The one prediction pipeline shared by the app, the CLI and the benchmarks.

    image -> faces (detect, crop and align per model config) -> per model: calibrated probabilities, Grad-CAM,
    own attention -> fusion from the branches' features -> agreement -> JSON-able results + timings

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

MODEL_KEYS = ("ddamfn", "resnet_dda", "fusion")
DISPLAY_NAMES = {"ddamfn": "DDAMFN", "resnet_dda": "ResNet+DDA", "fusion": "Fusion"}


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


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Analyzer:
    """Holds the models and the face detector; :meth:`analyze` runs the pipeline on one image."""

    def __init__(self, models: dict, detector="auto", max_faces: int = 10, min_face: int = 20):
        unknown = set(models) - set(MODEL_KEYS)
        if unknown:
            raise ValueError(f"unknown model keys {sorted(unknown)}; expected {MODEL_KEYS}")
        self.slots = {k: Slot.from_model(k, m) for k, m in models.items()}
        self.detector, self.detector_note = make_detector(detector) if isinstance(detector, str) else (detector, "")
        self.max_faces, self.min_face = max_faces, min_face
        fusion = models.get("fusion")
        # The fusion reuses the standalone branches' forward passes when it holds the same weights.
        self.fusion_reuses = (fusion is not None and "ddamfn" in models and "resnet_dda" in models
                              and _same_weights(fusion.branch_a, models["ddamfn"])
                              and _same_weights(fusion.branch_b, models["resnet_dda"]))
        for k in ("ddamfn", "resnet_dda"):
            if k in self.slots and "fusion" in self.slots and self.slots[k].labels != self.slots["fusion"].labels:
                raise ValueError(f"{k} and fusion have different labels")

    @classmethod
    def from_pretrained(cls, names: dict | None = None, **kw):
        from .weights import load_pretrained

        names = names or {k: k for k in MODEL_KEYS}
        return cls({k: load_pretrained(v) for k, v in names.items()}, **kw)

    # -- the pipeline ------------------------------------------------------------------------------------------
    def analyze(self, image, *, maps: bool = True, whole_image_if_none: bool = False, target: str | None = None,
                display_size: int = 112) -> dict:
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
        result = {"image_size": [int(rgb.shape[1]), int(rgb.shape[0])], "detector": det.detector,
                  "faces": [], "notes": notes, "timings_ms": {}}
        if not det.faces:
            result["notes"].append("no face found (try 'treat the whole image as one face')")
            result["timings_ms"] = {k: round(v * 1000, 1) for k, v in t.items()}
            return result
        t1 = time.perf_counter()
        crops = {}  # one crop per distinct crop spec
        for slot in self.slots.values():
            if slot.crop_key() not in crops:
                crops[slot.crop_key()] = [crop_face(rgb, f, slot.crop, slot.source_size, slot.grayscale)
                                          for f in det.faces]
        t["crop"] = time.perf_counter() - t1
        faces = [{"index": i + 1, **f.to_json(), "crops": {}, "models": {}} for i, f in enumerate(det.faces)]
        details = {}
        for key in ("ddamfn", "resnet_dda"):
            if key in self.slots:
                t1 = time.perf_counter()
                details[key] = self._run_branch(self.slots[key], crops[self.slots[key].crop_key()], faces, maps,
                                                target, display_size)
                t[key] = time.perf_counter() - t1
        if "fusion" in self.slots:
            t1 = time.perf_counter()
            self._run_fusion(self.slots["fusion"], crops, details, faces, maps, target, display_size)
            t["fusion"] = time.perf_counter() - t1
        for f in faces:
            f["agreement"] = agreement(f["models"])
        t["total"] = time.perf_counter() - t0
        result["faces"] = faces
        result["timings_ms"] = {k: round(v * 1000, 1) for k, v in t.items()}
        return result

    def _batch(self, slot: Slot, crops, flip=False):
        x = torch.from_numpy(np.stack(crops))
        return eval_transform(x, slot.size, slot.mean, slot.std, flip)

    def _flipped(self, slot, crops):
        """The flipped view's details (test-time flip), without gradients."""
        with model_lock(slot.model), torch.inference_mode():
            return slot.model.forward_details(self._batch(slot, crops, flip=True))

    @staticmethod
    def _probs(slot, logits, flipped=None):
        """Calibrated probabilities; with test-time flip, the logits are averaged with the flipped view's."""
        if flipped is not None:
            logits = (logits + flipped["logits"]) / 2
        return (logits / slot.temperature).softmax(1)

    def _run_branch(self, slot: Slot, crops, faces, maps, target, display_size):
        x = self._batch(slot, crops)
        if maps:
            classes = None if target is None else [slot.labels.index(target)] * len(crops)
            cams, det, leaves = gradcam_with_details(slot.model, x, classes)
            logits = det["logits"].detach()
        else:
            with model_lock(slot.model), torch.inference_mode():
                det = slot.model.forward_details(x)
            logits, leaves = det["logits"], []
        flipped = self._flipped(slot, crops) if slot.tta_flip else None
        probs = self._probs(slot, logits, flipped)
        att = own_attention(det["attention"], display_size) if maps else None
        cam_disp = resize_maps(torch.from_numpy(cams), display_size) if maps else None
        for i, f in enumerate(faces):
            f["crops"][slot.key] = self._model_view(slot, crops[i], display_size)
            f["models"][slot.key] = self._entry(slot, probs[i])
            if maps:
                f["models"][slot.key]["gradcam"] = cam_disp[i]
                f["models"][slot.key]["attention"] = att[i]
        return {"details": det, "leaves": leaves, "crops": crops, "flipped": flipped}

    def _run_fusion(self, slot: Slot, crops, details, faces, maps, target, display_size):
        fusion = slot.model
        if self.fusion_reuses:
            da, db = details["ddamfn"]["details"], details["resnet_dda"]["details"]
            with model_lock(fusion), torch.enable_grad() if maps else torch.inference_mode():
                out = fusion.fuse(da, db)
            leaves = details["ddamfn"]["leaves"] + details["resnet_dda"]["leaves"]
            cam = None
            if maps:
                k = self._target_index(slot, out["logits"], target)
                cam = gradcam_from_leaves(out["logits"].gather(1, k[:, None]), leaves, display_size)
            logits = out["logits"].detach()
            crop_list = details["ddamfn"]["crops"]
            flipped = None
            if slot.tta_flip:
                fa, fb = details["ddamfn"]["flipped"], details["resnet_dda"]["flipped"]
                if fa is None or fb is None:
                    fa, fb = (self._flipped(self.slots[k], details[k]["crops"]) for k in ("ddamfn", "resnet_dda"))
                with torch.inference_mode():
                    flipped = fusion.fuse(fa, fb)
            probs = self._probs(slot, logits, flipped)
            branch_maps = ([f["models"]["ddamfn"].get("attention") for f in faces],
                           [f["models"]["resnet_dda"].get("attention") for f in faces])
        else:  # the fusion's branches differ from the standalone models: run them
            crop_list = crops[slot.crop_key()]
            x = self._batch(slot, crop_list)
            if maps:
                classes = None if target is None else [slot.labels.index(target)] * len(crop_list)
                cams, out, _ = gradcam_with_details(fusion, x, classes)
                cam = resize_maps(torch.from_numpy(cams), display_size)
            else:
                with model_lock(fusion), torch.inference_mode():
                    out = fusion.forward_details(x)
                cam = None
            logits = out["logits"].detach()
            probs = self._probs(slot, logits, self._flipped(slot, crop_list) if slot.tta_flip else None)
            branch_maps = ((own_attention({k[2:]: v for k, v in out["attention"].items() if k.startswith("a_")},
                                          display_size),
                            own_attention({k[2:]: v for k, v in out["attention"].items() if k.startswith("b_")},
                                          display_size)) if maps else ([None] * len(faces), [None] * len(faces)))
        w = out["branch_weights"].detach().cpu().numpy()
        for i, f in enumerate(faces):
            f["crops"]["fusion"] = self._model_view(slot, crop_list[i], display_size)
            e = self._entry(slot, probs[i])
            e["branch_weights"] = {"ddamfn": round(float(w[i, 0]), 4), "resnet_dda": round(float(w[i, 1]), 4)}
            if maps:
                e["gradcam"] = cam[i]
                e["attention"] = (w[i, 0] * branch_maps[0][i] + w[i, 1] * branch_maps[1][i]).astype(np.float32)
            f["models"]["fusion"] = e

    @staticmethod
    def _target_index(slot, logits, target):
        if target is None:
            return logits.detach().argmax(1)
        return torch.full((len(logits),), slot.labels.index(target), dtype=torch.long)

    @staticmethod
    def _entry(slot, p) -> dict:
        p = p.detach().cpu().numpy()
        order = np.argsort(-p)
        return {"probs": {slot.labels[j]: round(float(p[j]), 5) for j in order},
                "top": slot.labels[order[0]], "confidence": round(float(p[order[0]]), 5)}

    @staticmethod
    def _model_view(slot, crop, size):
        """What the model saw (the crop after its resize), as uint8 for display."""
        import cv2

        img = cv2.resize(crop, (slot.size, slot.size), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) if slot.size != size else img


def agreement(models: dict) -> dict:
    """Do the models agree on the top label; and how similar their distributions are (1 - mean pairwise
    Jensen-Shannon divergence, base 2, over the classes all share), in [0, 1]."""
    tops = {k: v["top"] for k, v in models.items()}
    names = list(tops.values())
    majority = max(set(names), key=names.count) if names else None
    keys = list(models)
    shared = set.intersection(*(set(m["probs"]) for m in models.values())) if models else set()
    shared = sorted(shared)
    js = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            p = np.array([models[keys[i]]["probs"][c] for c in shared]) + 1e-12
            q = np.array([models[keys[j]]["probs"][c] for c in shared]) + 1e-12
            p, q = p / p.sum(), q / q.sum()
            m = (p + q) / 2
            js.append(0.5 * (p * np.log2(p / m)).sum() + 0.5 * (q * np.log2(q / m)).sum())
    votes = names.count(majority) if majority else 0
    if len(names) > 1 and votes == len(names):
        text = f"All {len(names)} models agree: {majority}"
    elif votes > 1:
        text = f"{votes} of {len(names)} models say {majority}"
    else:
        text = f"The {len(names)} models disagree"
    return {"all_agree": votes == len(names), "majority": majority, "votes": votes,
            "score": round(float(1 - np.mean(js)) if js else 1.0, 4), "text": text}


def to_json(result: dict) -> dict:
    """The analysis without images and maps: faces with boxes, per model the probabilities and top label."""
    out = {k: v for k, v in result.items() if k != "faces"}
    out["faces"] = []
    for f in result["faces"]:
        out["faces"].append({
            "index": f["index"], "box": f["box"], "score": f["score"], "landmarks": f["landmarks"],
            "models": {k: {kk: vv for kk, vv in m.items() if kk not in ("gradcam", "attention")}
                       for k, m in f["models"].items()},
            "agreement": f["agreement"]})
    return out


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
                    r = to_json(analyzer.analyze(rgb, maps=a.maps, whole_image_if_none=a.whole_image))
                    records.append({"file": str(path), "frame": i, "time_s": ts, **r})
                    bar.update(1)
                bar.close()
            else:
                r = to_json(analyzer.analyze(path, maps=a.maps, whole_image_if_none=a.whole_image))
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
                    f"{DISPLAY_NAMES[k]} {m['top']} ({m['confidence']:.2f})" for k, m in f["models"].items())
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
