"""Face detection and alignment: an RGB image -> faces (box, 5 landmarks, score) -> the crops each model expects.

Detectors: **YuNet** (ONNX, ``cv2.FaceDetectorYN``, 5 landmarks: right eye, left eye, nose tip, right and left
mouth corners, as seen by the subject) and **OpenCV Haar** (bundled with OpenCV, no landmarks) as the last
resort. The YuNet file is a path given, else ``FER_YUNET_PATH``, else the copy embedded in ``weights/yunet``
(sha256 checked), else OpenCV's Hub repo through the project's loader (:func:`fer_core.weights.fetch_file`); when
none loads, Haar runs and the result says why.

Crops follow the weights' crop spec (:class:`fer_core.preprocess.CropSpec`, from config.json), i.e. how the
training crops looked: a square of side ``box_scale x max(box w, h)`` around the box centre (moved down by
``y_offset x box height``), rotated so the eyes are level when landmarks exist (``align="eyes"``), sampled once
(``cv2.warpAffine``) at the spec's size (48 for FER+/FER2013 models, whose training images are 48x48) and
converted to grayscale when the model was trained on grayscale. The model's transform
(:func:`fer_core.preprocess.build_transform`) then resizes that crop exactly as in evaluation.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .preprocess import CropSpec
from .pretrained import PROJECT_WEIGHTS, PretrainedEntry

# The embedded default (MIT, weights/yunet/README.md) and its sha256, checked on every load. It ships with the
# code, so it is looked for in the project's weights/ even when FER_WEIGHTS_DIR points the models elsewhere.
YUNET_EMBEDDED = PROJECT_WEIGHTS / "yunet" / "face_detection_yunet.onnx"
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
# OpenCV's own Hub repo of the model, used when the embedded copy is missing. Its file is a later export than the
# embedded one (a different sha256), so it is not pinned: pin revision and sha256 here once checked online.
YUNET_ENTRY = PretrainedEntry("yunet", "yunet", "face_detection_yunet", "main", "yunet/" + YUNET_EMBEDDED.name,
                              org="opencv")
YUNET_FILE = "face_detection_yunet_2023mar.onnx"


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    score: float
    landmarks: np.ndarray | None = None  # 5 x 2 (x, y), or None (Haar)

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    def to_json(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "score": round(float(self.score), 4),
                "landmarks": None if self.landmarks is None else np.round(self.landmarks, 1).tolist()}


@dataclass
class Detection:
    faces: list[Face]
    detector: str
    capped: bool = False  # more faces were found than max_faces
    found: int = 0
    notes: list[str] = field(default_factory=list)


class HaarDetector:
    name = "haar"

    def __init__(self):
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (opencv-python-headless<5 ships it)")
        self.lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, min_size: int) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        with self.lock:
            boxes = self.cascade.detectMultiScale(gray, 1.1, 5, minSize=(min_size, min_size))
        return [Face(tuple(float(v) for v in b), 1.0) for b in (boxes if len(boxes) else [])]


class YuNetDetector:
    name = "yunet"

    # 0.5: on FER+ crops placed as faces in a photo, 99.0% are found against 97.3% at 0.7 (train_scripts/fit_crop.py)
    def __init__(self, model_path, score_threshold: float = 0.5, nms_threshold: float = 0.3):
        self.path = str(model_path)
        self.det = cv2.FaceDetectorYN.create(self.path, "", (320, 320), score_threshold, nms_threshold, 5000)
        self.lock = threading.Lock()  # the OpenCV object keeps the input size as state

    def __call__(self, rgb: np.ndarray, min_size: int) -> list[Face]:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        with self.lock:
            self.det.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, out = self.det.detect(bgr)
        faces = []
        for row in (out if out is not None else []):
            x, y, w, h = (float(v) for v in row[:4])
            if min(w, h) >= min_size:
                faces.append(Face((x, y, w, h), float(row[14]), row[4:14].reshape(5, 2).astype(np.float64)))
        return faces


def yunet_path(path=None) -> Path:
    """The YuNet file: ``path``, else ``FER_YUNET_PATH``, else the embedded copy (its sha256 checked: a damaged
    copy is an error, not a silent switch), else the Hub copy."""
    from .sources import fetch_file
    from .weights import WeightsError, sha256_file

    path = path or os.environ.get("FER_YUNET_PATH")
    if path:
        return Path(path)
    embedded = YUNET_EMBEDDED
    if embedded.is_file():
        if sha256_file(embedded) != YUNET_SHA256:
            raise WeightsError(f"{embedded}: sha256 is not the embedded YuNet's {YUNET_SHA256[:12]}... (damaged or "
                               f"replaced; restore it from git or set FER_YUNET_PATH)")
        return embedded
    return fetch_file(YUNET_ENTRY, YUNET_FILE)


def make_detector(kind: str = "auto", path=None):
    """``yunet``, ``haar``, or ``auto`` (YuNet if its file can be had, else Haar). Returns (detector, note)."""
    from .weights import WeightsError

    if kind == "haar":
        return HaarDetector(), ""
    try:
        return YuNetDetector(yunet_path(path)), ""
    except (WeightsError, cv2.error, OSError) as e:  # no file anywhere, a damaged copy, an ONNX OpenCV refuses
        if kind == "yunet":
            raise
        return HaarDetector(), f"YuNet unavailable ({str(e).splitlines()[0][:200]}); using OpenCV Haar"


def detect_faces(rgb: np.ndarray, detector, *, max_faces: int = 10, min_face: int = 20,
                 whole_image_if_none: bool = False) -> Detection:
    """Faces sorted left to right: the ``max_faces`` largest of those at least ``min_face`` pixels wide."""
    faces = detector(rgb, min_face)
    found = len(faces)
    det = Detection([], detector.name, found=found)
    faces = sorted(faces, key=lambda f: -f.area)
    if found > max_faces:
        det.capped = True
        det.notes.append(f"{found} faces found; showing the {max_faces} largest")
        faces = faces[:max_faces]
    det.faces = sorted(faces, key=lambda f: f.box[0])
    if not det.faces and whole_image_if_none:
        h, w = rgb.shape[:2]
        det.faces = [Face((0.0, 0.0, float(w), float(h)), 0.0)]
        det.detector = "whole image"
        det.notes.append("no face found: the whole image is treated as one face")
    return det


def crop_face(rgb: np.ndarray, face: Face, crop: CropSpec) -> np.ndarray:
    """One aligned square crop as ``crop`` specifies (uint8; ``size x size`` grayscale or ``size x size x 3``)."""
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2 + crop.y_offset * h
    angle = 0.0
    if crop.align == "eyes" and face.landmarks is not None:
        (rx, ry), (lx, ly) = face.landmarks[0], face.landmarks[1]
        angle = math.degrees(math.atan2(ly - ry, lx - rx))
        if abs(angle) > 45:  # implausible for a roughly upright face: do not rotate
            angle = 0.0
    side, size = max(w, h) * crop.box_scale, crop.size
    # warpAffine point-samples: for a big shrink, sample at 2x or more first, then area-downscale
    work = size if side <= 2 * size else int(2 * size * math.ceil(side / (2 * size)))
    m = cv2.getRotationMatrix2D((cx, cy), angle, work / max(side, 1.0))
    m[0, 2] += work / 2 - cx
    m[1, 2] += work / 2 - cy
    out = cv2.warpAffine(rgb, m, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if work != size:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) if crop.grayscale else out
