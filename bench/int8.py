"""int8 for reading faces? Each shipped branch's ONNX file (float32, as the page reads it) against ONNX Runtime's
static int8 quantisation of it (QDQ, per-channel weights, activations calibrated on FER+ train images outside the
selection slice, by their min and max or by their 0.001-99.999 percentiles): FER+ valid accuracy of each
(majority labels, with the mirror image, as the page reads), and one face with its mirror image (a batch of two)
on one and on two threads, timed in turns.

    python bench/int8.py --json out.json [--calibration 512] [--runs 50]

The issue's bar for adopting int8: FER+ valid within 0.3 point of float32, and faster.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.timing import p50_interleaved
from fer_core.predict import Analyzer
from fer_core.runtime import OnnxReader, onnx_reader

ROOT = Path(__file__).resolve().parent.parent


METHODS = ("minmax", "percentile")  # how the activations' ranges are calibrated


def accuracy(reader, slot, images, labels, names, batch: int = 128) -> float:
    hits = 0
    for i in range(0, len(images), batch):
        crops = list(images[i:i + batch])
        x = slot.batch(crops)
        logits = (reader(x)["logits"] + reader(slot.batch(crops, flip=True))["logits"]) / 2
        top = [slot.labels[j] for j in logits.argmax(1).tolist()]
        hits += sum(t == names[y] for t, y in zip(top, labels[i:i + batch]))
    return hits / len(images)


def quantize(slot, fp32_path: Path, out: Path, images, method: str = "percentile") -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": slot.batch(list(images[i:i + 32])).numpy()}
                                 for i in range(0, len(images), 32)])

        def get_next(self):
            return next(self.batches, None)

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    quantize_static(str(fp32_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=methods[method])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--data", default=str(ROOT / ".data/ferplus.npz.xz"),
                    help="FER+ as `fer-data cache ferplus --splits train,valid` caches it (majority labels)")
    ap.add_argument("--calibration", type=int, default=512)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    from fer_core.data.cache import load_cache
    from fer_core.data.holdout import read_list, without

    torch.set_num_threads(2)
    splits = load_cache(a.data)
    _, names = read_list("ferplus")
    train = without(splits["train"], names, "train without the selection slice")
    valid = splits["valid"]
    g = np.random.default_rng(0)
    calib = train.images[g.choice(len(train), a.calibration, replace=False)]
    analyzer = Analyzer.from_pretrained({k: Path(a.weights_dir) / k for k in ("ddamfn", "resnet_dda")},
                                        detector="haar", device="cpu")
    res = {"date": time.strftime("%Y-%m-%d"), "cpu": os.cpu_count(), "calibration_images": a.calibration,
           "valid_images": len(valid), "models": {}}
    scratch = tempfile.TemporaryDirectory()  # the quantised files go when the benchmark ends
    tmp = Path(scratch.name)
    for key, slot in analyzer.shown.items():
        fp32 = onnx_reader(slot.model, slot.size)[0].path  # the whole reading in one graph (quantised whole)
        row, files = {}, {"fp32": fp32}
        for method in METHODS:
            t0 = time.perf_counter()
            files[f"int8_{method}"] = quantize(slot, fp32, tmp / f"{key}-{method}.onnx", calib, method)
            row[f"quantize_{method}_s"] = round(time.perf_counter() - t0, 1)
        readers = {f"{kind}_{t}thread": OnnxReader(p, t) for kind, p in files.items() for t in (1, 2)}
        for kind in files:
            row[f"{kind}_ferplus_valid"] = accuracy(readers[f"{kind}_2thread"], slot, valid.images, valid.labels,
                                                    valid.label_set.names)
        x = slot.batch(list(valid.images[:1]) * 2)
        row.update({f"{k}_b2_ms": v for k, v in
                    p50_interleaved({k: (lambda r=r: r(x)) for k, r in readers.items()}, a.runs).items()})
        for method in METHODS:
            kind = f"int8_{method}"
            row[f"{kind}_change_points"] = 100 * (row[f"{kind}_ferplus_valid"] - row["fp32_ferplus_valid"])
            for t in (1, 2):
                row[f"{kind}_speedup_{t}thread"] = row[f"fp32_{t}thread_b2_ms"] / row[f"{kind}_{t}thread_b2_ms"]
        res["models"][key] = row
        print(key, json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
