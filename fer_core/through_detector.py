"""Accuracy through the detector: what the page's own path (detect -> crop spec -> models) makes of a dataset's
face crops, beside what the models make of the crops themselves.

Each crop is enlarged (``scale`` x, bicubic) and centred on a grey canvas (``canvas`` x the enlarged side), as a
face in a photo; the Analyzer finds the faces on it (YuNet as on the page), keeps the one nearest the centre,
crops it with each model's crop spec and reads it. A face that is not found counts as wrong, or, with
``whole_image_if_none`` (the page's "treat the whole image as one face"), the whole canvas is read instead.

    rep = evaluate_through_detector(analyzer, dataset)   # detection rate, accuracy per model, and on the crops
"""
from __future__ import annotations

import cv2
import numpy as np

from .faces import Face
from .images import gray_to_rgb
from .labels import canonical_name


def place_on_canvas(crop: np.ndarray, scale: float = 4.0, canvas: float = 2.0, grey: int = 128) -> np.ndarray:
    """The crop enlarged ``scale`` x (bicubic) in the middle of a grey RGB canvas ``canvas`` x its side."""
    rgb = gray_to_rgb(crop)
    side = int(round(rgb.shape[0] * scale))
    big = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_CUBIC)
    full = int(round(side * canvas))
    out = np.full((full, full, 3), grey, np.uint8)
    o = (full - side) // 2
    out[o:o + side, o:o + side] = big
    return out


def central_face(faces, size: int) -> Face | None:
    """The face whose box centre is nearest the canvas centre."""
    if not faces:
        return None
    c = size / 2
    return min(faces, key=lambda f: (f.box[0] + f.box[2] / 2 - c) ** 2 + (f.box[1] + f.box[3] / 2 - c) ** 2)


def detect_all(analyzer, images: np.ndarray, scale: float = 4.0, canvas: float = 2.0, progress: bool = False):
    """(canvases' side, the central face found on each crop's canvas or None)."""
    from tqdm.auto import tqdm

    faces, side = [], 0
    for img in tqdm(images, disable=not progress, desc="detecting", unit="face"):
        rgb = place_on_canvas(img, scale, canvas)
        side = rgb.shape[0]
        faces.append(central_face(analyzer.detect(rgb).faces, side))
    return side, faces


def crops_through_detector(analyzer, images: np.ndarray, faces, spec, scale: float = 4.0, canvas: float = 2.0,
                           whole_image_if_none: bool = False) -> tuple[list, np.ndarray]:
    """(the crops ``spec`` makes of the faces found, which images they belong to)."""
    from .faces import crop_face

    crops, rows = [], []
    for i, (img, face) in enumerate(zip(images, faces)):
        rgb = place_on_canvas(img, scale, canvas)
        if face is None and whole_image_if_none:
            face = Face((0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0])), 0.0)
        if face is not None:
            crops.append(crop_face(rgb, face, spec))
            rows.append(i)
    return crops, np.array(rows, dtype=np.int64)


def evaluate_through_detector(analyzer, ds, *, spec=None, scale: float = 4.0, canvas: float = 2.0,
                              whole_image_if_none: bool = False, faces=None, on_crops=None,
                              progress: bool = False) -> dict:
    """Per shown model: accuracy and balanced accuracy on the crops and through the detector (a face not found
    counts as wrong unless ``whole_image_if_none``), and how often the two readings agree; the detection rate.
    ``spec``: a crop spec to use instead of the models' own (they must share one); ``faces`` and ``on_crops``:
    the detections and crop readings of an earlier call on the same data, to reuse."""
    n = len(ds)
    if faces is None:
        _, faces = detect_all(analyzer, ds.images, scale, canvas, progress)
    found = np.array([f is not None for f in faces])
    if spec is None:
        specs = {s.data.crop for s in analyzer.slots.values()}
        if len(specs) > 1:
            raise ValueError("the models use different crop specs: evaluate them one at a time")
        spec = specs.pop()
    on_crops = analyzer.read(list(ds.images)) if on_crops is None else on_crops
    crops, rows = crops_through_detector(analyzer, ds.images, faces, spec, scale, canvas, whole_image_if_none)
    results = analyzer.read(crops)
    report = {"n": n, "scale": scale, "canvas": canvas, "detected": int(found.sum()),
              "detection_rate": float(found.mean()), "whole_image_if_none": whole_image_if_none,
              "crop_spec": spec.to_config(), "models": {}}
    names = [canonical_name(c) for c in ds.label_set.names]
    for key, slot in analyzer.shown.items():
        labels = [canonical_name(c) for c in slot.labels]
        crop_pred = np.array([labels[int(np.argmax(r[key].logits))] for r in on_crops])
        det_pred = np.full(n, None, dtype=object)
        det_pred[rows] = [labels[int(np.argmax(r[key].logits))] for r in results]
        truth = np.array([names[t] for t in ds.labels])
        report["models"][key] = {"crops": _accuracies(crop_pred == truth, truth),
                                 "through_detector": _accuracies(det_pred == truth, truth),
                                 "agreement_with_crops": float((det_pred[rows] == crop_pred[rows]).mean())
                                 if len(rows) else 0.0}
    return report


def _accuracies(correct: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy, and balanced accuracy (the mean of the per-class recalls)."""
    correct = correct.astype(bool)
    recalls = [float(correct[truth == c].mean()) for c in np.unique(truth)]
    return {"accuracy": float(correct.mean()), "balanced_accuracy": float(np.mean(recalls))}
