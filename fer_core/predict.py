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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .balance import offset
from .explain import gradcam_with_details, gradcams_from_leaves, model_lock, own_attention, resize_maps
from .faces import Detection, crop_face, detect_faces, make_detector
from .images import ImageInputError, load_image
from .preprocess import DataConfig, Transform, build_transform, resolve_data_config
from .results import Analysis, FaceResult, ModelResult, display_name

MODEL_KEYS = ("ddamfn", "resnet_dda", "fusion")  # the shipped weights, in the order the page shows them


@dataclass
class Slot:
    """A loaded model with its data config (:func:`fer_core.preprocess.resolve_data_config`) and the transform
    built from it. A hidden slot is a lone fusion's branch: run for the fusion, not shown."""

    key: str
    model: torch.nn.Module
    labels: list[str]
    data: DataConfig
    transform: Transform
    hidden: bool = False
    onnx: object = None  # an ONNX Runtime reader of the same weights (fer_core.runtime), for reading without maps

    @classmethod
    def from_model(cls, key, model, data: DataConfig | None = None, hidden: bool = False, labels=None):
        data = data or resolve_data_config(model)
        labels = list(labels or model.pretrained_cfg["label_names"])
        return cls(key, model.eval(), labels, data, build_transform(data), hidden)

    @property
    def size(self) -> int:
        return self.data.input_size

    @property
    def grayscale(self) -> bool:
        return self.data.crop.grayscale

    @property
    def tta_flip(self) -> bool:
        return self.data.tta_flip

    @property
    def temperature(self) -> float:
        return self.data.temperature

    def reading(self, setting: str = "accurate"):
        """Logits -> the scores whose softmax the page shows: tempered, and in the balanced setting adjusted for
        the training class frequencies (:mod:`fer_core.balance`)."""
        shift = None if self.hidden else offset(self.model.pretrained_cfg, setting)
        t = self.temperature

        def scores(logits):
            z = logits.float() / t
            return z if shift is None else z - shift.to(z.device)

        return scores

    def batch(self, crops, flip: bool = False):
        """Face crops -> the model's input, by the one transform (as in evaluation)."""
        return self.transform(crops, flip)

    def seen(self, x) -> list[np.ndarray]:
        return self.transform.seen(x)


def resolve_device(device="auto") -> torch.device:
    """``auto`` (``FER_DEVICE`` when set, else CUDA where there is one, else the CPU), or a device name."""
    name = str(device)
    if name == "auto":
        name = os.environ.get("FER_DEVICE", "").strip() or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA device here (use cpu or auto)")
    return dev


def _feeds(slot: Slot, data: DataConfig) -> bool:
    """``slot`` reads exactly what ``data`` describes (its own temperature aside)."""
    return replace(slot.data, temperature=1.0) == replace(data, temperature=1.0)


@dataclass
class _Pass:
    """One model's forward pass over the faces of an image, kept for a fusion that reuses it. With test-time
    flip the batch holds the faces, then their mirror images (one forward for both views: on a CPU, a batch of
    two costs far less than two batches of one, these models being bound by reading their weights)."""

    details: dict  # rows: the faces (then their flipped views)
    leaves: list  # Grad-CAM target activations whose graph to the logits is kept (maps only)
    n: int  # the faces


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
    """Holds the models and the face detector; :meth:`analyze` runs the pipeline on one image, :meth:`read`
    the models on face crops already made.

    A fusion is always computed from its branches' forward passes (:meth:`FusionNet.fuse`): from the slots of the
    same modules when they read exactly the inputs the fusion's data config gives its branches (as
    :meth:`from_pretrained` loads them), else from hidden slots of its own branches."""

    def __init__(self, models: dict, detector="auto", max_faces: int = 10, min_face: int = 20, device="auto",
                 engine: str = "auto"):
        self.device = resolve_device(device)
        self.slots = {k: Slot.from_model(k, m.to(self.device)) for k, m in models.items()}
        self.detector, self.detector_note = make_detector(detector) if isinstance(detector, str) else (detector, "")
        self.max_faces, self.min_face = max_faces, min_face
        self.sources = {}  # fusion key -> the keys of the slots holding its two branches (shown ones)
        self._branch_keys = {}  # fusion key -> the slots it fuses (shown or hidden)
        for key, slot in list(self.slots.items()):
            if not hasattr(slot.model, "fuse"):
                continue
            keys = []
            for i, (tag, branch) in enumerate((("a", slot.model.branch_a), ("b", slot.model.branch_b))):
                want = slot.data.branch(i)
                found = next((k for k, s in self.slots.items()
                              if s.model is branch and not s.hidden and _feeds(s, want)), None)
                if found is None:
                    found = f"{key}.branch_{tag}"
                    self.slots[found] = Slot.from_model(found, branch, want, hidden=True, labels=slot.labels)
                if self.slots[found].labels != slot.labels:
                    raise ValueError(f"{found} and {key} have different labels")
                keys.append(found)
            self._branch_keys[key] = tuple(keys)
            if not any(self.slots[k].hidden for k in keys):
                self.sources[key] = tuple(keys)
        self.engine, self.engine_notes = self._attach_onnx(engine)

    def _attach_onnx(self, engine: str) -> tuple[str, list[str]]:
        """ONNX Runtime sessions for reading without maps (``engine`` auto: on the CPU where onnxruntime is
        installed and each session matches torch; onnx: the same, required; torch: none)."""
        if engine not in ("auto", "onnx", "torch"):
            raise ValueError(f"engine must be auto, onnx or torch, got {engine!r}")
        if engine == "torch" or (engine == "auto" and self.device.type != "cpu"):
            return "torch", []
        from .runtime import onnx_reader

        notes = []
        readers = [k for k in self.slots if k not in self._branch_keys]  # a fusion's head runs on its branches'
        # on the CPU the models read side by side (:meth:`_read`), so the threads are shared out between them:
        # DDAMFN reads as fast on one thread as on two, and two models on one thread each take 1.45x less than
        # one after the other on two (BENCHMARKS: "Inference engines")
        threads = max(1, torch.get_num_threads() // len(readers)) if self.device.type == "cpu" and readers else None
        for key in readers:
            slot = self.slots[key]
            slot.onnx, why = onnx_reader(slot.model, slot.size, threads, device=str(self.device))
            if slot.onnx is None:
                if engine == "onnx":
                    raise RuntimeError(f"{key}: {why}")
                notes.append(f"{key} reads with torch: {why}")
        return ("onnx" if not notes else "mixed" if len(notes) < len(readers) else "torch"), notes

    def to(self, device) -> Analyzer:
        """A copy of this analyzer with its models (copied, shared modules still shared) on ``device``, the
        detector shared: e.g. a CPU analyzer for live frames beside a GPU one for photos."""
        import copy

        shown = {k: s.model for k, s in self.slots.items() if not s.hidden}
        models = copy.deepcopy(shown)  # one deepcopy: a fusion and its branches keep sharing modules
        for k, m in models.items():
            m.pretrained_cfg = shown[k].pretrained_cfg
        out = Analyzer(models, detector=self.detector, max_faces=self.max_faces, min_face=self.min_face,
                       device=device)
        out.detector_note = self.detector_note
        return out

    @property
    def shown(self) -> dict:
        """The slots the page shows, in order."""
        return {k: s for k, s in self.slots.items() if not s.hidden}

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
    def analyze(self, image, *, maps: bool = False, whole_image_if_none: bool = False, target: str | None = None,
                setting: str = "accurate", display_size: int = 224) -> Analysis:
        """Run everything on one image (path, bytes, PIL image or array): decode, faces, crops, models, and with
        ``maps`` Grad-CAM and own attention. ``target`` names the class Grad-CAM explains (default: the label
        shown, each model's top). ``setting``: ``accurate`` or ``balanced`` (rare classes named more often, where
        a weight records that reading; :mod:`fer_core.balance`)."""
        t = {}
        t0 = time.perf_counter()
        rgb = load_image(image)
        t["decode"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        det = self.detect(rgb, whole_image_if_none)
        t["detect"] = time.perf_counter() - t1
        notes = ([self.detector_note] if self.detector_note else []) + det.notes
        faces = [FaceResult(i + 1, **f.to_json()) for i, f in enumerate(det.faces)]
        result = Analysis(rgb, det.detector, faces, notes, {})
        if not faces:
            notes.append("no face found (try 'treat the whole image as one face')")
        else:
            t1 = time.perf_counter()
            crops = self.crops(rgb, det.faces)
            t["crop"] = time.perf_counter() - t1
            for face, models in zip(faces, self._read(crops, maps, target, display_size, t, setting)):
                face.models = models
        t["total"] = time.perf_counter() - t0
        result.timings_ms = {k: round(v * 1000, 1) for k, v in t.items()}
        return result

    def detect(self, rgb: np.ndarray, whole_image_if_none: bool = False) -> Detection:
        """The faces of an RGB image, as :meth:`analyze` finds them."""
        return detect_faces(rgb, self.detector, max_faces=self.max_faces, min_face=self.min_face,
                            whole_image_if_none=whole_image_if_none)

    def crops(self, rgb: np.ndarray, faces) -> dict:
        """``{crop spec: [one crop per face]}``, one set per distinct crop spec of the models."""
        out = {}
        for slot in self.slots.values():
            if slot.data.crop not in out:
                out[slot.data.crop] = [crop_face(rgb, f, slot.data.crop) for f in faces]
        return out

    def read(self, crops, *, maps: bool = False, target: str | None = None, display_size: int = 224,
             batch: int = 64, setting: str = "accurate") -> list[dict[str, ModelResult]]:
        """The models on face crops already made (uint8, the crop spec's size and colour, e.g. FER+'s 48x48
        grayscale images): per crop, ``{key: ModelResult}``, in batches of ``batch``. The page's path from the
        crops on."""
        crops = list(crops)
        for slot in self.slots.values():
            spec = slot.data.crop
            shape = (spec.size, spec.size) if spec.grayscale else (spec.size, spec.size, 3)
            bad = next((c.shape for c in crops if c.shape != shape), None)
            if bad is not None:
                raise ValueError(f"{slot.key} reads {shape} crops, got {bad}")
        specs = {slot.data.crop for slot in self.slots.values()}
        out = []
        for i in range(0, len(crops), batch):
            out += self._read({spec: crops[i:i + batch] for spec in specs}, maps, target, display_size, {}, setting)
        return out

    def _read(self, crops: dict, maps, target, display_size, timings,
              setting="accurate") -> list[dict[str, ModelResult]]:
        n = len(next(iter(crops.values())))
        per_face = [{} for _ in range(n)]
        passes, done = {}, {}
        t0 = time.perf_counter()

        def run(key):
            t1 = time.perf_counter()
            slot = self.slots[key]
            passes[key], done[key] = self._run(slot, crops[slot.data.crop], maps and not slot.hidden, target,
                                               display_size, leaves=maps, setting=setting)
            timings[key] = time.perf_counter() - t1

        singles = [k for k in self.slots if k not in self._branch_keys]
        if not maps and len(singles) > 1 and all(self.slots[k].onnx is not None for k in singles) \
                and self.device.type == "cpu":
            # ONNX Runtime releases the GIL: the models read side by side, each on its share of the threads
            with ThreadPoolExecutor(len(singles) - 1) as pool:
                futures = [pool.submit(run, k) for k in singles[1:]]
                run(singles[0])
                for f in futures:
                    f.result()
        else:
            for key in singles:
                run(key)
        for key in self._branch_keys:
            t1 = time.perf_counter()
            a, b = (passes[k] for k in self._branch_keys[key])
            slot = self.slots[key]
            done[key] = self._fuse(slot, a, b, crops[slot.data.crop], maps, target, display_size, setting)
            timings[key] = time.perf_counter() - t1
        for key, slot in self.slots.items():
            if slot.hidden:
                timings.pop(key, None)
                continue
            for face, r in zip(per_face, done[key]):
                face[key] = r
        timings["models"] = time.perf_counter() - t0  # the models' wall time (side by side, it is not the sum)
        return per_face

    @staticmethod
    def _probs(slot: Slot, logits, setting: str = "accurate") -> list[dict]:
        """Calibrated probabilities per face (of the setting's reading), highest first."""
        p = slot.reading(setting)(logits.detach()).softmax(1).cpu().numpy()
        return [{slot.labels[j]: round(float(row[j]), 5) for j in np.argsort(-row)} for row in p]

    def _run(self, slot: Slot, crops, maps, target, display_size, leaves: bool = False, setting="accurate"):
        """One model on its own: one forward (of the faces and, with test-time flip, their mirror images) serves
        logits, own attention and (with maps) Grad-CAM of the shown label for the faces alone. ``leaves`` keeps
        the target-layer activations for a fusion's Grad-CAM."""
        n = len(crops)
        x = slot.batch(crops)
        batch = (torch.cat([x, slot.batch(crops, flip=True)]) if slot.tta_flip else x).to(self.device)
        cams, kept = None, []
        if maps or leaves:
            classes = None if target is None else [slot.labels.index(target)] * n
            cam_maps, det, kept = gradcam_with_details(slot.model, batch, classes, shown=n,
                                                       reading=slot.reading(setting))
            if maps:
                cams = resize_maps(torch.from_numpy(cam_maps), display_size)
        elif slot.onnx is not None:
            det = slot.onnx(batch)  # logits and pooled features: no maps are drawn on this path
        else:
            with model_lock(slot.model), torch.inference_mode():
                det = slot.model.forward_details(batch)
        faces = _rows(det, n)
        att = own_attention(faces["attention"], display_size) if maps else None
        logits = _view_logits(det["logits"].detach().float(), n)
        results = [ModelResult(slot.key, p, seen, gradcam=None if cams is None else cams[i],
                               attention=None if att is None else att[i], logits=logits[i].cpu().numpy())
                   for i, (p, seen) in enumerate(zip(self._probs(slot, logits, setting), slot.seen(x)))]
        return _Pass(det, kept, n), results

    def _fuse(self, slot: Slot, a: _Pass, b: _Pass, crops, maps, target, display_size, setting="accurate"):
        """A fusion from its branches' passes: fused logits; Grad-CAM of the shown label through the reused
        activations and the branches' own attention, each branch's map mixed by the per-face branch weights."""
        fusion, n = slot.model, a.n
        with model_lock(fusion), torch.enable_grad() if maps else torch.inference_mode():
            out = fusion.fuse(a.details, b.details)
        logits = _view_logits(out["logits"].detach().float(), n)
        w = out["branch_weights"].detach()[:n]
        cams = att = None
        if maps:
            k = (slot.reading(setting)(logits).argmax(1) if target is None
                 else torch.full((n,), slot.labels.index(target), dtype=torch.long)).to(logits.device)
            scores = out["logits"][:n].gather(1, k[:, None])
            cams = self._mix(w, *gradcams_from_leaves(scores, [a.leaves, b.leaves], display_size))
            att = self._mix(w, own_attention(_rows(a.details, n)["attention"], display_size),
                            own_attention(_rows(b.details, n)["attention"], display_size))
        x = slot.batch(crops)
        return [ModelResult(slot.key, p, seen, gradcam=None if cams is None else cams[i],
                            attention=None if att is None else att[i], branch_weights=self._weights(slot, w[i]),
                            logits=logits[i].cpu().numpy())
                for i, (p, seen) in enumerate(zip(self._probs(slot, logits, setting), slot.seen(x)))]

    @staticmethod
    def _mix(weights, map_a: np.ndarray, map_b: np.ndarray) -> np.ndarray:
        """Each branch's map (normalised) weighted by that face's weight of the branch."""
        w = weights.detach().float().cpu().numpy()[:, :, None, None]
        return (w[:, 0] * map_a + w[:, 1] * map_b).astype(np.float32)

    def _weights(self, slot: Slot, w) -> dict:
        names = self.sources.get(slot.key, ("branch_a", "branch_b"))
        return {names[0]: round(float(w[0]), 4), names[1]: round(float(w[1]), 4)}


# -- CLI ---------------------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def _inputs(paths):
    from .video import VIDEO_SUFFIXES

    for p in map(Path, paths):
        if p.is_dir():
            yield from (q for q in sorted(p.rglob("*")) if q.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        else:
            yield p


class _Records:
    """The CLI's outputs, written as each record arrives: a JSON array (valid once closed), CSV rows, map PNGs."""

    def __init__(self, json_path, csv_path, labels, maps_dir=None):
        import csv

        from .video import CSV_HEADER

        self.labels, self.maps_dir, self.count = labels, maps_dir, 0
        self.json = open(json_path, "w") if json_path else None
        if self.json:
            self.json.write("[\n")
        self.csv_file = open(csv_path, "w", newline="") if csv_path else None
        self.csv = csv.writer(self.csv_file) if self.csv_file else None
        if self.csv:
            self.csv.writerow(CSV_HEADER + list(labels))

    def add(self, record: dict, analysis: Analysis | None = None):
        from .video import rows

        if analysis is not None and self.maps_dir is not None:
            record = dict(record, maps=self._maps(record, analysis))
        if self.json:
            self.json.write((",\n" if self.count else "") + json.dumps(record))
            self.json.flush()
        if self.csv:
            self.csv.writerows(rows([record], self.labels, record["file"]))
            self.csv_file.flush()
        self.count += 1

    def _maps(self, record, analysis) -> dict:
        """Each face's Grad-CAM and own-attention maps as PNGs beside the JSON; their paths."""
        import cv2

        stem = Path(record["file"]).stem + (f"_f{record['frame']}" if record.get("frame") is not None else "")
        out = {}
        for face in analysis.faces:
            for key, m in face.models.items():
                for kind in ("gradcam", "attention"):
                    heat = getattr(m, kind)
                    if heat is None:
                        continue
                    path = self.maps_dir / f"{stem}_face{face.index}_{key}_{kind}.png"
                    cv2.imwrite(str(path), np.uint8(np.round(heat * 255)))
                    out[f"face{face.index}/{key}/{kind}"] = str(path)
        return out

    def close(self):
        if self.json:
            self.json.write("\n]\n")
            self.json.close()
        if self.csv_file:
            self.csv_file.close()


def main(argv=None) -> int:
    from tqdm.auto import tqdm

    from .video import VIDEO_SUFFIXES, analyze_video, probe

    ap = argparse.ArgumentParser(description="Facial expressions of the faces in images, folders and videos.")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--json", default=None, help="write every record here, as it is made (a JSON array)")
    ap.add_argument("--csv", default=None, help="one row per face and model (and frame): top, confidence, each class")
    ap.add_argument("--every", type=int, default=5, help="videos: analyse every n-th frame (faces are tracked)")
    ap.add_argument("--maps", action="store_true",
                    help="images: also Grad-CAM and own attention, written as PNGs beside the JSON (slower)")
    ap.add_argument("--balanced", action="store_true", help="the balanced reading (rare classes named more often)")
    ap.add_argument("--whole-image", action="store_true", help="no face found: use the whole image")
    ap.add_argument("--detector", default="auto", choices=("auto", "yunet", "haar"))
    ap.add_argument("--weights", action="append", default=[], help="KEY=NAME_OR_PATH, e.g. ddamfn=runs/x/export")
    ap.add_argument("--models", default=",".join(MODEL_KEYS))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("FER_THREADS", "2")))
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (auto: FER_DEVICE, else CUDA if any)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = {k: k for k in a.models.split(",")}
    names.update(dict(kv.split("=", 1) for kv in a.weights))
    analyzer = Analyzer.from_pretrained(names, detector=a.detector, device=a.device)
    setting = "balanced" if a.balanced else "accurate"
    labels = next(iter(analyzer.shown.values())).labels
    maps_dir = None
    if a.maps:
        maps_dir = Path(a.json).with_suffix("") if a.json else Path("maps")
        maps_dir.mkdir(parents=True, exist_ok=True)
    out = _Records(a.json, a.csv, labels, maps_dir)
    files, failed = list(_inputs(a.paths)), 0
    try:
        for path in tqdm(files, desc="files", unit="file", disable=len(files) < 2):
            try:
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    info = probe(path)
                    bar = tqdm(total=(info.frames + a.every - 1) // a.every if info.frames else None,
                               desc=path.name, unit="frame")
                    for rec in analyze_video(analyzer, path, a.every, setting, progress=lambda d, t: bar.update(1)):
                        if "error" in rec:
                            print(f"{path} frame {rec['frame']}: {rec['error']}", file=sys.stderr)
                        out.add({"file": str(path), **rec})
                    bar.close()
                else:
                    analysis = analyzer.analyze(path, maps=a.maps, whole_image_if_none=a.whole_image, setting=setting)
                    rec = {"file": str(path), "frame": None, **analysis.to_json()}
                    out.add(rec, analysis)
                    if len(files) == 1:
                        _print(rec)
            except ImageInputError as e:
                failed += 1
                out.add({"file": str(path), "error": str(e)})
                print(f"{path}: {e}", file=sys.stderr)
    finally:
        out.close()
    return 1 if failed else 0


def _print(rec: dict) -> None:
    for f in rec.get("faces", []):
        print(f"face {f['index']} {f['box']}: " + ", ".join(
            f"{display_name(k)} {m['top']} ({m['confidence']:.2f})" for k, m in f["models"].items())
            + f" | {f['agreement']['text']}" + (f" | uncertain: {'; '.join(f['doubts'])}" if f["doubts"] else ""))
    for n in rec.get("notes", []):
        print("note:", n)


if __name__ == "__main__":
    raise SystemExit(main())
