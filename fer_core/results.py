"""What an analysis returns: one typed result per image, per face and per model, each with its own ``to_json``.

Arrays (the model's input, its Grad-CAM and own-attention maps) stay on the objects for the page and the CLI's
``--maps``; ``to_json`` gives the plain-JSON part (boxes, probabilities, top labels, branch weights, agreement)
that the ``predict`` API endpoint and the CLI write, and with ``maps=True`` each computed map as an 8-bit
grayscale PNG (base64; 0 = no weight, 255 = the most).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DISPLAY_NAMES = {"ddamfn": "DDAMFN", "resnet_dda": "ResNet+DDA", "fusion": "Fusion"}
# Doubt. A reading whose calibrated top probability is below UNCERTAIN_BELOW is more often wrong than right (the
# models are calibrated on their selection split: ECE 3-4% on FER+ valid: the weights table); a face box
# smaller than MIN_READABLE_PX is read from a crop enlarged from fewer pixels than the 48x48 training images hold
# by two thirds. Either is marked uncertain, on the page and in the JSON.
UNCERTAIN_BELOW = 0.5
MIN_READABLE_PX = 32


def display_name(key: str) -> str:
    return DISPLAY_NAMES.get(key, key)


@dataclass
class ModelResult:
    key: str
    probs: dict[str, float]  # calibrated, highest first
    input_image: np.ndarray  # what the model saw: its input tensor, de-normalised, uint8 at its input size
    gradcam: np.ndarray | None = None  # H x W in [0, 1] at the display size (None in live mode)
    attention: np.ndarray | None = None  # the model's own attention, same size
    branch_weights: dict[str, float] | None = None  # a fusion's per-sample weight of each branch
    logits: np.ndarray | None = None  # before the temperature, averaged over the test-time views (not in to_json)

    @property
    def top(self) -> str:
        return next(iter(self.probs))

    @property
    def confidence(self) -> float:
        return self.probs[self.top]

    @property
    def name(self) -> str:
        return display_name(self.key)

    @property
    def uncertain(self) -> bool:
        return self.confidence < UNCERTAIN_BELOW

    def to_json(self, maps: bool = False) -> dict:
        out = {"probs": self.probs, "top": self.top, "confidence": self.confidence, "uncertain": self.uncertain}
        if self.branch_weights is not None:
            out["branch_weights"] = self.branch_weights
        if maps:
            out.update({f"{kind}_png": map_png(getattr(self, kind)) for kind in ("gradcam", "attention")
                        if getattr(self, kind) is not None})
        return out


def map_png(heat: np.ndarray) -> str:
    """A map in [0, 1] as a base64 8-bit grayscale PNG."""
    import base64

    import cv2

    ok, buf = cv2.imencode(".png", np.uint8(np.round(np.clip(heat, 0, 1) * 255)))
    if not ok:
        raise ValueError("could not encode a map")
    return base64.b64encode(buf.tobytes()).decode("ascii")


@dataclass
class FaceResult:
    index: int  # 1-based, left to right
    box: list[float]  # x, y, w, h
    score: float
    landmarks: list | None
    models: dict[str, ModelResult] = field(default_factory=dict)

    @property
    def agreement(self) -> dict:
        return agreement(self.models)

    @property
    def too_small(self) -> bool:
        return min(self.box[2], self.box[3]) < MIN_READABLE_PX

    @property
    def doubts(self) -> list[str]:
        """Why this face's readings may be wrong (empty when nothing says so)."""
        out = []
        if self.too_small:
            out.append(f"the face is {min(self.box[2], self.box[3]):.0f} px, below the {MIN_READABLE_PX} px "
                       "a reliable reading needs")
        low = [display_name(k) for k, m in self.models.items() if m.uncertain]
        if low:
            out.append(f"{', '.join(low)}: top probability below {UNCERTAIN_BELOW:.0%}")
        return out

    def to_json(self, maps: bool = False) -> dict:
        return {"index": self.index, "box": self.box, "score": self.score, "landmarks": self.landmarks,
                "models": {k: m.to_json(maps) for k, m in self.models.items()}, "agreement": self.agreement,
                "too_small": self.too_small, "uncertain": bool(self.doubts), "doubts": self.doubts}


@dataclass
class Analysis:
    image: np.ndarray  # the decoded RGB image (decoded once: the page draws on this one)
    detector: str
    faces: list[FaceResult]
    notes: list[str]
    timings_ms: dict[str, float]

    def face(self, index: int) -> FaceResult:
        """Face ``index`` (1-based), or the first one if there is no such face."""
        return next((f for f in self.faces if f.index == index), self.faces[0])

    def to_json(self, maps: bool = False) -> dict:
        return {"image_size": [int(self.image.shape[1]), int(self.image.shape[0])], "detector": self.detector,
                "faces": [f.to_json(maps) for f in self.faces], "notes": list(self.notes),
                "timings_ms": dict(self.timings_ms)}

    def for_display(self, max_side: int = 1280) -> Analysis:
        """A copy for the page to keep between events: the image downscaled to ``max_side`` at most, the boxes
        and landmarks scaled with it (the maps and the models' inputs are small already)."""
        import cv2

        h, w = self.image.shape[:2]
        k = min(1.0, max_side / max(h, w))
        if k == 1.0:
            return self
        image = cv2.resize(self.image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        faces = [FaceResult(f.index, [v * k for v in f.box], f.score,
                            None if f.landmarks is None else [[x * k, y * k] for x, y in f.landmarks], f.models)
                 for f in self.faces]
        return Analysis(image, self.detector, faces, list(self.notes), dict(self.timings_ms))


def agreement(models: dict[str, ModelResult]) -> dict:
    """Do the models agree on the top label; and how similar their distributions are (1 - mean pairwise
    Jensen-Shannon divergence, base 2, over the classes all share), in [0, 1]."""
    names = [m.top for m in models.values()]
    majority = max(set(names), key=names.count) if names else None
    keys = list(models)
    shared = sorted(set.intersection(*(set(m.probs) for m in models.values()))) if models else []
    js = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            p = np.array([models[keys[i]].probs[c] for c in shared]) + 1e-12
            q = np.array([models[keys[j]].probs[c] for c in shared]) + 1e-12
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
