"""The analyzer: the models and the face detector, and the one pipeline the app, the CLI, the cluster path, the
benchmarks and the evaluation share.

    image -> faces (detect, then crop and align per model config) -> models (calibrated probabilities, Grad-CAM,
    own attention; a fusion reuses its branches' forward passes) -> an :class:`~fer_core.results.Analysis`
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from ..explain import model_lock
from ..faces import Detection, crop_face, detect_faces, make_detector
from ..hardware import resolve_device
from ..images import load_image
from ..results import Analysis, FaceResult, ModelResult
from .engines import attach_lean, attach_onnx, each_model
from .maps import read_with_maps
from .slot import Slot, feeds, view_logits, views

MODEL_KEYS = ("ddamfn", "resnet_dda", "fusion")  # the shipped weights, in the order the page shows them


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
        self.branch_keys = {}  # fusion key -> the slots it fuses (shown or hidden)
        for key, slot in list(self.slots.items()):
            if hasattr(slot.model, "fuse"):
                self._find_branches(key, slot)
        self.asked = {"engine": engine, "maps_dtype": maps_dtype}  # as given: what a copy on another device asks
        self.engine, self.engine_notes = attach_onnx(self.slots, self.singles(), self.device, engine)
        self.maps_dtype = attach_lean(self.slots, self.singles(), self.device, maps_dtype)

    def _find_branches(self, key: str, slot: Slot) -> None:
        """The slots a fusion reads its branches from: shown slots of the same modules that read what it gives
        them, else hidden slots of its own."""
        keys = []
        for i, (tag, branch) in enumerate((("a", slot.model.branch_a), ("b", slot.model.branch_b))):
            want = slot.data.branch(i)
            found = next((k for k, s in self.slots.items()
                          if s.model is branch and not s.hidden and feeds(s, want)), None)
            if found is None:
                found = f"{key}.branch_{tag}"
                self.slots[found] = Slot.from_model(found, branch, want, hidden=True, labels=slot.labels)
            if self.slots[found].labels != slot.labels:
                raise ValueError(f"{found} and {key} have different labels")
            keys.append(found)
        self.branch_keys[key] = tuple(keys)
        if not any(self.slots[k].hidden for k in keys):
            self.sources[key] = tuple(keys)

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

    @property
    def labels(self) -> list[str]:
        """The class names of the shown models (the first's)."""
        return next(iter(self.shown.values())).labels

    @classmethod
    def from_pretrained(cls, names: dict | None = None, **kw):
        """Load weights by name or path (``{key: name_or_path}``, default the shipped three) into an analyzer."""
        return cls(cls.load_models(names), **kw)

    @staticmethod
    def load_models(names: dict | None = None) -> dict:
        """The models of ``names`` (as :meth:`from_pretrained`), on the CPU; a fusion takes the branch modules
        loaded before it instead of loading its own copies."""
        from ..weights import load_pretrained

        models = {}
        for key, name in (names or {k: k for k in MODEL_KEYS}).items():
            models[key] = load_pretrained(name, reuse=list(models.values()))
        return models

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

    def singles(self) -> list[str]:
        """The slots that run on images (a fusion runs on its branches' passes)."""
        return [k for k in self.slots if k not in self.branch_keys]

    def _read_with_maps(self, crops, n, target, display_size, timings, setting) -> dict:
        return read_with_maps(self, crops, n, target, display_size, timings, setting)

    def _read_plain(self, crops, n, target, display_size, timings, setting) -> dict:
        """Without maps: each model's forward (ONNX Runtime where attached), the fusions on their branches'."""
        passes, done = {}, {}

        def run(key):
            t1 = time.perf_counter()
            slot = self.slots[key]
            x = slot.batch(crops[slot.data.crop])
            batch = views(slot, crops[slot.data.crop], x)
            if slot.onnx is not None:
                det = slot.onnx(batch)  # logits and pooled features: no maps are drawn on this path
            else:
                with model_lock(slot.model), torch.inference_mode():
                    det = slot.model.forward_details(batch.to(self.device))  # the crops are made on the CPU
            passes[key] = det
            done[key] = self.results(slot, det, x, n, setting)
            timings[key] = time.perf_counter() - t1

        singles = self.singles()
        each_model(singles, run, self.device.type == "cpu" and all(self.slots[k].onnx is not None for k in singles))
        for key, (ka, kb) in self.branch_keys.items():
            t1 = time.perf_counter()
            slot = self.slots[key]
            with model_lock(slot.model), torch.inference_mode():
                out = slot.model.fuse(passes[ka], passes[kb])
            done[key] = self.results(slot, out, slot.batch(crops[slot.data.crop]), n, setting)
            timings[key] = time.perf_counter() - t1
        return done

    def results(self, slot: Slot, det, x, n, setting, cams=None, att=None) -> list[ModelResult]:
        """A model's results per face from its forward details (``det``: logits over the views, a fusion's branch
        weights) and input ``x``, with the maps where given."""
        logits = view_logits(det["logits"].detach().float(), n)
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

    def _weights(self, slot: Slot, w) -> dict:
        names = self.sources.get(slot.key, ("branch_a", "branch_b"))
        return {names[0]: round(float(w[0]), 4), names[1]: round(float(w[1]), 4)}
