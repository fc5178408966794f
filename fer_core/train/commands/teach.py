"""Compute distillation targets once: the mean of the teachers' calibrated, flip-averaged probabilities on every
image of a training split, saved by image name for ``train.py --distill FILE``.

    python train_scripts/teach.py --teachers weights/ddamfn weights/resnet_dda weights/fusion \\
        --data cache:.data/ferplus_prob.npz.xz --split train --out .data/teacher_ferplus_train.npz

By default the teachers read as the page does (ONNX Runtime, the branches side by side, a fusion on their
outputs; ``--engine torch``: eager torch): the same probabilities (5e-7 apart on FER+ train's first 512 faces
with the shipped three) in about a third of the time on a 2-core CPU.

The file is derived from the dataset (research use only): keep it out of the repository (``.data/`` is ignored).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import torch

from fer_core.pretrained import entry_for_sha256
from fer_core.train.commands import program
from fer_core.train.distill import read_probabilities, save_teacher, teacher_probabilities
from fer_core.train.setup import _read_split
from fer_core.weights import load_pretrained


def teacher_id(name, model) -> str:
    """How cards name a teacher: as given, its weights' sha256, and the Hub revision that pins it, if one does."""
    sha = model.pretrained_cfg["files"]["model.safetensors"]["sha256"]
    entry = entry_for_sha256(sha)
    return f"{name}@sha256:{sha[:16]}" + (f" ({entry.hf_hub_id}@{entry.revision})" if entry else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teachers", nargs="+", required=True, help="weights folders or shipped names")
    ap.add_argument("--data", required=True, help="KIND:PATH or cache:FILE, as train.py's --data")
    ap.add_argument("--split", default="train")
    ap.add_argument("--protocol", default="probability", help="which images (probability keeps ties)")
    ap.add_argument("--engine", default="auto", choices=("auto", "onnx", "torch"),
                    help="auto / onnx: read as the page does (ONNX Runtime where it is installed and matches torch); "
                         "torch: eager torch, one model after the other")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    ds = _read_split(a.data, a.split, a.protocol)
    models = []
    for t in a.teachers:  # a fusion takes the branches loaded before it
        models.append(load_pretrained(t, reuse=list(models)))
    for t, m in zip(a.teachers, models):
        if list(m.pretrained_cfg["label_names"]) != list(ds.label_set.names):
            raise SystemExit(f"{t}: classes {m.pretrained_cfg['label_names']} differ from the data's "
                             f"{list(ds.label_set.names)}")
    if a.engine == "torch":
        probs = teacher_probabilities(models, torch.from_numpy(ds.images))
    else:
        probs = read_probabilities(models, ds.images, a.engine)
    ids = [teacher_id(t, m) for t, m in zip(a.teachers, models)]
    command = " ".join([program("fer-teach")] + [shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv)])
    out = save_teacher(a.out, [os.path.basename(p) for p in ds.paths], list(ds.label_set.names), probs, ids, command)
    agree = float((probs.argmax(1) == ds.labels).mean())
    print(f"wrote {out}: {len(ds)} images, teachers {ids}; their top class is the label's for {agree:.1%} "
          f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
