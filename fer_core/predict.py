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
import contextlib
import copy
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
from .explain import gradcam_maps, model_lock, own_attention, resize_maps
from .faces import Detection, crop_face, detect_faces, make_detector
from .images import ImageInputError, load_image
from .preprocess import DataConfig, Transform, build_transform, resolve_data_config
from .results import Analysis, FaceResult, ModelResult, display_name

MODEL_KEYS = ("ddamfn", "resnet_dda", "fusion")  # the shipped weights, in the order the page shows them
MAPS_DTYPES = ("auto", "float32", "bfloat16")  # the maps' part after each Grad-CAM target (Analyzer._attach_lean)


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
    prefix: object = None  # ONNX Runtime's session of the part before Grad-CAM's target (forward_prefix), for maps
    lean: torch.nn.Module | None = None  # a frozen bfloat16 copy that runs the part after the target, for maps

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


def _each_tensor(obj, fn):
    """``fn`` applied to every tensor of a (nested) forward-details structure, the rest kept."""
    if isinstance(obj, dict):
        return {k: _each_tensor(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_each_tensor(v, fn) for v in obj)
    return fn(obj) if isinstance(obj, torch.Tensor) else obj


def _rows(obj, n: int):
    """The first ``n`` rows of every batch tensor in a (nested) forward-details structure."""
    return _each_tensor(obj, lambda t: t[:n] if t.dim() > 0 else t)


def _take(obj, index: torch.Tensor):
    """The rows ``index`` of every batch tensor in a (nested) forward-details structure."""
    return _each_tensor(obj, lambda t: t.index_select(0, index) if t.dim() > 0 else t)


def _bfloat16_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of ``model`` in eval mode with its floating-point tensors in bfloat16, made tensor by tensor (a
    whole float32 copy first would leave its size behind in the allocator)."""
    memo = {id(t): (torch.nn.Parameter(t.detach().to(torch.bfloat16), requires_grad=False)
                    if isinstance(t, torch.nn.Parameter) else t.to(torch.bfloat16))
            for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()}
    return copy.deepcopy(model, memo).eval()


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
                 engine: str = "auto", maps_dtype: str = "auto"):
        self.device = resolve_device(device)
        for m in models.values():  # the Analyzer serves its models: eval mode (Slot), no parameter gradients
            m.requires_grad_(False)
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
        self.asked = {"engine": engine, "maps_dtype": maps_dtype}  # as given: what a copy on another device asks
        self.engine, self.engine_notes = self._attach_onnx(engine)
        self.maps_dtype = self._attach_lean(maps_dtype)

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
        kind = "onnx" if not notes else "mixed" if len(notes) < len(readers) else "torch"
        for key in readers:  # the maps: the part before Grad-CAM's target, whose gradient no map needs
            slot = self.slots[key]
            slot.prefix, why = onnx_reader(slot.model, slot.size, threads, device=str(self.device), part="prefix")
            if slot.prefix is None:
                notes.append(f"{key}'s maps run wholly in torch: {why}")
        return kind, notes

    def _attach_lean(self, maps_dtype: str) -> str:
        """Bfloat16 copies for the maps' part after each Grad-CAM target, of the models that ask for it
        (``maps_in_bfloat16``: where that part reads most of the weights). ``maps_dtype`` auto (``FER_MAPS_DTYPE``
        when set): bfloat16 on CPUs that compute it natively, else float32; bfloat16 or float32: as said. The
        readings without maps never use them."""
        from .train.hardware import cpu_has_native_bf16

        if maps_dtype == "auto":
            maps_dtype = os.environ.get("FER_MAPS_DTYPE", "").strip() or "auto"
        if maps_dtype not in MAPS_DTYPES:
            raise ValueError(f"maps_dtype must be one of {MAPS_DTYPES}, got {maps_dtype!r}")
        if maps_dtype == "auto":
            maps_dtype = "bfloat16" if self.device.type == "cpu" and cpu_has_native_bf16() else "float32"
        if maps_dtype == "bfloat16":
            for key in self._singles():
                slot = self.slots[key]
                if getattr(slot.model, "maps_in_bfloat16", False):
                    slot.lean = _bfloat16_copy(slot.model)
        return maps_dtype

    def to(self, device) -> Analyzer:
        """A copy of this analyzer with its models (copied, shared modules still shared) on ``device``, the
        detector shared: e.g. a CPU analyzer for live frames beside a GPU one for photos. It asks for the same
        engine and maps dtype as this one (``auto`` resolves again for ``device``)."""
        shown = {k: s.model for k, s in self.slots.items() if not s.hidden}
        models = copy.deepcopy(shown)  # one deepcopy: a fusion and its branches keep sharing modules
        for k, m in models.items():
            m.pretrained_cfg = shown[k].pretrained_cfg
        out = Analyzer(models, detector=self.detector, max_faces=self.max_faces, min_face=self.min_face,
                       device=device, **self.asked)
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
        t0 = time.perf_counter()
        done = (self._read_with_maps if maps else self._read_plain)(crops, n, target, display_size, timings, setting)
        per_face = [{} for _ in range(n)]
        for key, slot in self.slots.items():
            if slot.hidden:
                timings.pop(key, None)
                continue
            for face, r in zip(per_face, done[key]):
                face[key] = r
        timings["models"] = time.perf_counter() - t0  # the models' wall time (side by side, it is not the sum)
        return per_face

    def _singles(self) -> list[str]:
        """The slots that run on images (a fusion runs on its branches' passes)."""
        return [k for k in self.slots if k not in self._branch_keys]

    def _read_plain(self, crops, n, target, display_size, timings, setting) -> dict:
        """Without maps: each model's forward (ONNX Runtime where attached), the fusions on their branches'."""
        passes, done = {}, {}

        def run(key):
            t1 = time.perf_counter()
            slot = self.slots[key]
            x = slot.batch(crops[slot.data.crop])
            batch = self._views(slot, crops[slot.data.crop], x)
            if slot.onnx is not None:
                det = slot.onnx(batch)  # logits and pooled features: no maps are drawn on this path
            else:
                with model_lock(slot.model), torch.inference_mode():
                    det = slot.model.forward_details(batch)
            passes[key] = det
            done[key] = self._results(slot, det, x, n, setting)
            timings[key] = time.perf_counter() - t1

        singles = self._singles()
        self._each_model(singles, run, all(self.slots[k].onnx is not None for k in singles))
        for key, (ka, kb) in self._branch_keys.items():
            t1 = time.perf_counter()
            slot = self.slots[key]
            with model_lock(slot.model), torch.inference_mode():
                out = slot.model.fuse(passes[ka], passes[kb])
            done[key] = self._results(slot, out, slot.batch(crops[slot.data.crop]), n, setting)
            timings[key] = time.perf_counter() - t1
        return done

    def _read_with_maps(self, crops, n, target, display_size, timings, setting) -> dict:
        """With maps, for the faces only (their mirror images share the forward passes but get no map), of the
        label shown (or ``target``):

        * each model's part before its Grad-CAM target's output (``forward_prefix``) runs without a graph (ONNX
          Runtime where attached, the models side by side); the rest (``forward_suffix``) keeps its graph from
          those activations on (parameters frozen) and yields logits and own attention in the same pass;
        * a fusion reads its branches' passes (:meth:`FusionNet.fuse`);
        * ONE backward pass gives the gradients of every explained score at every target layer. A model's own
          score and a fusion's both reach that model's activations; so that their gradients stay apart, the faces
          enter the model's batch once more for each further score that needs them (rows never mix in eval mode:
          the copies cost one row each, where a second backward through the model would cost its weights again).
        """
        singles = self._singles()
        readers = {k: ([k] if not self.slots[k].hidden else []) for k in singles}  # whose map needs its gradients
        for f, ks in self._branch_keys.items():
            for k in ks:
                readers[k].append(f)
        models = sorted({id(s.model): s.model for s in self.slots.values()}.items())
        rows, full, dets, xs, leaves, scores, done = {}, {}, {}, {}, {}, [], {}
        with contextlib.ExitStack() as stack:
            for _, m in models:  # in one order, so two requests never wait on each other
                stack.enter_context(model_lock(m))
            stack.enter_context(torch.enable_grad())  # the parameters are frozen (__init__): no graph before the leaves
            for key, (xs[key], v, pre) in self._prefixes(singles, crops, timings).items():
                t1 = time.perf_counter()
                slot = self.slots[key]
                copies = max(0, len(readers[key]) - 1)
                pre = _take(pre, torch.cat([torch.arange(v * n)] + [torch.arange(n)] * copies).to(self.device))
                leaves[key] = pre["act"].requires_grad_(True)
                full[key] = det = self._suffix(slot, pre)
                dets[key] = _rows(det, v * n)
                # reader j's rows: the faces (their own copy for j > 0), then the other views
                others = torch.arange(n, v * n, device=self.device)
                rows[key] = {r: torch.cat([torch.arange(start, start + n, device=self.device), others])
                             for r, start in zip(readers[key], [0] + [v * n + i * n for i in range(copies)])}
                if not slot.hidden:
                    own = _take(det, rows[key][key])["logits"]
                    scores.append(self._explained(slot, own, n, target, setting))
                timings[key] += time.perf_counter() - t1
            fused = {}
            for key, (ka, kb) in self._branch_keys.items():
                t1 = time.perf_counter()
                slot = self.slots[key]
                fused[key] = out = slot.model.fuse(_take(full[ka], rows[ka][key]), _take(full[kb], rows[kb][key]))
                scores.append(self._explained(slot, out["logits"], n, target, setting))
                timings[key] = time.perf_counter() - t1
            t1 = time.perf_counter()
            grads = dict(zip(singles, torch.autograd.grad(torch.cat(scores).sum(), [leaves[k] for k in singles])))

        def cam(key, reader, size):
            return gradcam_maps([(leaves[key][:n], grads[key][rows[key][reader][:n]])], size)

        for key in singles:
            slot = self.slots[key]
            if slot.hidden:
                continue
            cams = resize_maps(torch.from_numpy(cam(key, key, slot.size)), display_size)
            att = own_attention(_rows(dets[key], n)["attention"], display_size)
            done[key] = self._results(slot, dets[key], xs[key], n, setting, cams, att)
        for key, (ka, kb) in self._branch_keys.items():
            slot, out = self.slots[key], fused[key]
            w = out["branch_weights"].detach()[:n]
            cams = self._mix(w, cam(ka, key, display_size), cam(kb, key, display_size))
            att = self._mix(w, own_attention(_rows(dets[ka], n)["attention"], display_size),
                            own_attention(_rows(dets[kb], n)["attention"], display_size))
            done[key] = self._results(slot, out, slot.batch(crops[slot.data.crop]), n, setting, cams, att)
        timings["gradcam"] = time.perf_counter() - t1
        return done

    @staticmethod
    def _suffix(slot: Slot, pre: dict) -> dict:
        """The part after the Grad-CAM target, with its graph: in the slot's bfloat16 copy where it has one (its
        float outputs differ from float32's by what FER+ valid measures: BENCHMARKS "The maps")."""
        if slot.lean is None:
            return slot.model.forward_suffix(pre)
        out = slot.lean.forward_suffix({**pre, "act": pre["act"].to(torch.bfloat16)})
        return _each_tensor(out, lambda t: t.float() if t.is_floating_point() else t)

    def _prefixes(self, keys, crops, timings) -> dict:
        """Each model's part before its Grad-CAM target (ONNX Runtime where attached, side by side on the CPU; else
        torch without a graph) on the faces and their other views: ``{key: (faces' input, number of views,
        outputs)}``. (Starting a model's rest in torch while another's part still runs was measured slower: the
        threads then outnumber the cores.)"""
        out = {}

        def run(key):
            t1 = time.perf_counter()
            slot, c = self.slots[key], crops[self.slots[key].data.crop]
            x = slot.batch(c)
            views = self._views(slot, c, x).to(self.device)
            if slot.prefix is not None:
                pre = _each_tensor(slot.prefix(views), lambda t: t.to(self.device))
            else:
                with torch.no_grad():
                    pre = slot.model.forward_prefix(views)
            out[key] = (x, len(views) // len(x), pre)
            timings[key] = time.perf_counter() - t1

        self._each_model(keys, run, all(self.slots[k].prefix is not None for k in keys))
        return out

    def _each_model(self, keys, run, onnx: bool) -> None:
        """``run(key)`` for each model: side by side, each on its share of the threads, when they all run in ONNX
        Runtime on the CPU (it releases the GIL); else one after the other."""
        if len(keys) > 1 and onnx and self.device.type == "cpu":
            with ThreadPoolExecutor(len(keys) - 1) as pool:
                futures = [pool.submit(run, k) for k in keys[1:]]
                run(keys[0])
                for f in futures:
                    f.result()
        else:
            for key in keys:
                run(key)

    @staticmethod
    def _views(slot: Slot, crops, x) -> torch.Tensor:
        """The faces, then (with test-time flip) their mirror images: one batch, one forward for both views."""
        return torch.cat([x, slot.batch(crops, flip=True)]) if slot.tta_flip else x

    def _explained(self, slot: Slot, logits, n, target, setting) -> torch.Tensor:
        """The scores Grad-CAM explains: per face, the logit of the label shown (the top of the setting's reading
        of its view-averaged logits) or of ``target``."""
        avg = _view_logits(logits.detach().float(), n)
        k = (slot.reading(setting)(avg).argmax(1) if target is None
             else torch.full((n,), slot.labels.index(target), dtype=torch.long, device=avg.device))
        return logits[:n].gather(1, k[:, None])

    def _results(self, slot: Slot, det, x, n, setting, cams=None, att=None) -> list[ModelResult]:
        logits = _view_logits(det["logits"].detach().float(), n)
        w = det.get("branch_weights")
        w = None if w is None else w.detach()
        return [ModelResult(slot.key, p, seen, gradcam=None if cams is None else cams[i],
                            attention=None if att is None else att[i],
                            branch_weights=None if w is None else self._weights(slot, w[i]),
                            logits=logits[i].cpu().numpy())
                for i, (p, seen) in enumerate(zip(self._probs(slot, logits, setting), slot.seen(x)))]

    @staticmethod
    def _probs(slot: Slot, logits, setting: str = "accurate") -> list[dict]:
        """Calibrated probabilities per face (of the setting's reading), highest first."""
        p = slot.reading(setting)(logits.detach()).softmax(1).cpu().numpy()
        return [{slot.labels[j]: round(float(row[j]), 5) for j in np.argsort(-row)} for row in p]

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
