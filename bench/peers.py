"""Our shipped models against what people use today: `fer` (PyPI 25.10.3), in one run on one machine.

`fer` is the most installed Python FER library: a mini-Xception trained on FER2013 (7 classes), Haar faces, and by
default (``use_tflite=True``) the quantised TFLite model shipped in its wheel, ``fer/data/emotion_model_quantized
.tflite``. This benchmark runs that same file with the TFLite runtime (``ai-edge-litert``) and reproduces fer's
preprocessing from its source (``FER.detect_emotions``): grayscale face, square box, 10 px offsets on a padded
image, ``cv2.resize`` to 64x64, ``x / 255``, then ``(x - 0.5) * 2``. ``import fer`` itself is never run: it
imports TensorFlow.

Reported for each of our shipped models and for fer's model, on the same 48x48 face crops:

* FER+ valid (8 classes, majority protocol; fer has no *contempt*: those images count as errors for it and its
  contempt recall is 0) and FER2013 val (7 classes, labels matched by name): accuracy, balanced accuracy,
  per-class recall. fer's checkpoint was selected on FER2013's test halves (PublicTest is FER2013 val here and
  FER+ valid's pixels), so its figures on them are optimistic;
* CPU latency per face, the model alone (batch 1, ``--threads`` threads, preprocessing excluded);
* the whole photo pipeline on the example photos: decode, detect, crop, model(s) (ours with YuNet, all three
  models, without and with both maps; fer with its Haar settings and its model).

    pip install -r requirements-bench.txt && pip install --no-deps fer==25.10.3
    python -m bench.peers --json bench_peers.json [--weights-dir weights] [--markdown table.md]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.timing import p50
from fer_core.data import dataset_root, read_dataset
from fer_core.faces import YuNetDetector, make_detector
from fer_core.images import load_image
from fer_core.predict import MODEL_KEYS, Analyzer
from fer_core.preprocess import build_transform, resolve_data_config
from fer_core.train.evaluation import evaluate_model, score_by_name

ROOT = Path(__file__).resolve().parent.parent
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's FER._get_labels order
FER_PADDING = 40  # fer.fer.PADDING
EVALS = (("ferplus_valid", "ferplus", "ferplus", "valid"), ("fer2013_val", "fer2013", "fer2013", "val"))


class FerPeer:
    """fer's default emotion model (the quantised TFLite file in its wheel) with fer's own preprocessing."""

    def __init__(self, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        spec = importlib.util.find_spec("fer")  # locates the package without importing it (that needs TensorFlow)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("fer is not installed: pip install --no-deps fer==25.10.3")
        self.path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model_quantized.tflite"
        self.version = _installed_version("fer")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]["index"]
        self.out = self.interpreter.get_output_details()[0]["index"]
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    @staticmethod
    def preprocess(gray_faces) -> np.ndarray:
        """uint8 gray faces (any sizes) -> float32 ``N x 64 x 64 x 1`` in [-1, 1], as fer.detect_emotions."""
        x = np.stack([cv2.resize(f, (64, 64)) for f in gray_faces]).astype("float32") / 255.0
        return ((x - 0.5) * 2.0)[..., None]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Scores for preprocessed faces, one invoke per face (as fer does)."""
        out = []
        for i in range(len(x)):
            self.interpreter.set_tensor(self.inp, x[i:i + 1])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.out)[0].copy())
        return np.stack(out)

    def detect_emotions(self, bgr: np.ndarray) -> list:
        """fer's FER.detect_emotions with its defaults (Haar 1.1 / 5 / 50 px, offsets 10), on our runtime."""
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                              minSize=(50, 50))
        row = gray[-2:]
        padded = cv2.copyMakeBorder(gray, *(FER_PADDING,) * 4, cv2.BORDER_CONSTANT, value=float(cv2.mean(row)[0]))
        faces = []
        for x, y, w, h in boxes:
            if h > w:
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, y1 = max(0, x - 10 + FER_PADDING), max(0, y - 10 + FER_PADDING)
            faces.append(padded[y1:y + h + 10 + FER_PADDING, x1:x + w + 10 + FER_PADDING])
        if not faces:
            return []
        scores = self.run(self.preprocess(faces))
        return [dict(zip(FER_LABELS, map(float, s))) for s in scores]


def _installed_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _summary(rep: dict) -> dict:
    return {"n": rep["n"], "accuracy": rep["accuracy"], "balanced_accuracy": rep["balanced_accuracy"],
            "recall": {k: v["recall"] for k, v in rep["per_class"].items()}}


def accuracy_table(models: dict, peer: FerPeer, data: dict) -> dict:
    out = {}
    for key, kind, root_key, split in EVALS:
        ds = read_dataset(kind, data[root_key], split)
        row = {name: _summary(evaluate_model(m, ds, missing="count_wrong")) for name, m in models.items()}
        scores = peer.run(peer.preprocess(ds.images))
        row["fer"] = _summary(score_by_name(FER_LABELS, torch.from_numpy(np.log(np.clip(scores, 1e-12, None))), ds,
                                            missing="count_wrong"))
        out[key] = row
        print(key, {k: round(v["accuracy"], 4) for k, v in row.items()}, flush=True)
    return out


def model_latency(models: dict, peer: FerPeer, runs: int) -> dict:
    out = {}
    for name, m in models.items():
        dc = resolve_data_config(m)
        crop = torch.zeros(1, dc.crop.size, dc.crop.size, dtype=torch.uint8)
        x = build_transform(dc)(crop)
        with torch.inference_mode():
            out[name] = p50(lambda: m(x), runs)
    x = peer.preprocess(np.zeros((1, 48, 48), np.uint8))
    out["fer"] = p50(lambda: peer.run(x), runs)
    return out


def pipeline_latency(models: dict, peer: FerPeer, photos, yunet: Path, runs: int) -> dict:
    detector = YuNetDetector(yunet) if yunet.exists() else make_detector("auto")[0]
    analyzer = Analyzer(models, detector=detector)
    out = {}
    for photo in photos:
        rgb = load_image(photo)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        n_ours = len(analyzer.analyze(rgb, maps=False).faces)
        out[Path(photo).name] = {
            "faces_ours": n_ours, "faces_fer": len(peer.detect_emotions(bgr)), "detector_ours": detector.name,
            "ours_no_maps_ms": p50(lambda: analyzer.analyze(load_image(photo), maps=False), runs),
            "ours_with_maps_ms": p50(lambda: analyzer.analyze(load_image(photo), maps=True), runs),
            "fer_ms": p50(lambda: peer.detect_emotions(cv2.imread(str(photo))), runs),
        }
    return out


def markdown(res: dict) -> str:
    names = list(res["accuracy"]["ferplus_valid"])
    titles = {"ddamfn": "DDAMFN (ours)", "resnet_dda": "ResNet+DDA (ours)", "fusion": "Fusion (ours)",
              "fer": f"`fer` {res['peer']['version']} (TFLite mini-Xception)*"}
    lines = ["| model | FER+ valid acc | balanced | FER2013 val acc | balanced | model alone, ms/face |",
             "|---|---|---|---|---|---|"]
    for n in names:
        a, b = res["accuracy"]["ferplus_valid"][n], res["accuracy"]["fer2013_val"][n]
        lines.append(f"| {titles.get(n, n)} | {100 * a['accuracy']:.1f}% | {100 * a['balanced_accuracy']:.1f}% | "
                     f"{100 * b['accuracy']:.1f}% | {100 * b['balanced_accuracy']:.1f}% | "
                     f"{res['model_latency_ms'][n]:.2f} |")
    lines += ["", "Recall per class on FER+ valid:", "",
              "| class | " + " | ".join(titles.get(n, n) for n in names) + " |", "|---|" + "---|" * len(names)]
    for c in res["accuracy"]["ferplus_valid"][names[0]]["recall"]:
        lines.append(f"| {c} | " + " | ".join(f"{100 * res['accuracy']['ferplus_valid'][n]['recall'][c]:.1f}%"
                                             for n in names) + " |")
    lines += ["", "| photo | faces (ours / fer) | ours, 3 models, no maps | ours, with both maps | fer |",
              "|---|---|---|---|---|"]
    for photo, r in res["pipeline_ms"].items():
        lines.append(f"| {photo} | {r['faces_ours']} / {r['faces_fer']} | {r['ours_no_maps_ms']:.0f} ms | "
                     f"{r['ours_with_maps_ms']:.0f} ms | {r['fer_ms']:.0f} ms |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="Our shipped models against fer, on the same crops and machine.")
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--ferplus", default=str(dataset_root("ferplus")), help="default: $FER_DATA/ferplus")
    ap.add_argument("--fer2013", default=str(dataset_root("fer2013")), help="default: $FER_DATA/fer2013")
    ap.add_argument("--photos", nargs="*", default=[str(ROOT / "demo/examples/grace_hopper.jpg"),
                                                     str(ROOT / "demo/examples/astronaut.png")])
    ap.add_argument("--yunet", default=str(ROOT / "weights/yunet/face_detection_yunet.onnx"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None, help="also write the tables as Markdown here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = {k: s.model for k, s in Analyzer.from_pretrained(  # the fusion holds its branches' own modules
        {k: Path(a.weights_dir) / k for k in MODEL_KEYS}, detector="haar").shown.items()}
    peer = FerPeer(a.threads)
    res = {"date": time.strftime("%Y-%m-%d"), "threads": a.threads,
           "peer": {"name": "fer", "version": peer.version, "model_file": peer.path.name,
                    "runtime": f"ai-edge-litert {_installed_version('ai-edge-litert')}"},
           "ours": {k: {"architecture": m.arch_name, "input": m.pretrained_cfg["input_size"][1],
                        "storage": m.pretrained_cfg.get("storage")} for k, m in models.items()}}
    res["accuracy"] = accuracy_table(models, peer, {"ferplus": a.ferplus, "fer2013": a.fer2013})
    res["model_latency_ms"] = model_latency(models, peer, a.runs)
    res["pipeline_ms"] = pipeline_latency(models, peer, a.photos, Path(a.yunet), max(5, a.runs // 3))
    table = markdown(res)
    print(table)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    if a.markdown:
        Path(a.markdown).write_text(table)
    return res


if __name__ == "__main__":
    main()
