"""Train a model on FER+ (or any dataset fer_core reads) and export its best weights.

    python train_scripts/train.py --model ddamfn --input-size 64 --data cache:.data/ferplus.npz.xz
    python train_scripts/train.py --model resnet18_dda --input-size 64 --model-args '{"dda_stages": [3, 4]}'
    python train_scripts/train.py --model fusion --branch-a weights/ddamfn --branch-b weights/resnet_dda --epochs 5
    torchrun --standalone --nproc_per_node=4 train_scripts/train.py --model ddamfn ...   # several GPUs (DDP)
    python train_scripts/train.py ... --resume                  # continue from RUN/last.pt, even after a fresh clone
    python train_scripts/train.py ... --init-from weights/ddamfn   # warm start with a fresh schedule

Every flag is a field of ``fer_core.train.TrainConfig`` (``--help`` lists them with their defaults). Runs live in
``--out``, else ``$FER_RUNS/MODEL`` (default ``~/.cache/fer/runs/MODEL``): metrics.csv, tb/ (TensorBoard),
last.pt / best.pt, curves.png, confusion.png, val_report.json and export/ (model.safetensors + config.json with
provenance).
"""
from __future__ import annotations

import argparse
import sys

from fer_core.options import add_arguments, build
from fer_core.train import TrainConfig, train
from fer_core.train.commands import program


def parse(argv=None) -> TrainConfig:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap, TrainConfig)
    return build(TrainConfig, ap.parse_args(argv))


def main(argv=None):
    argv = list(argv if argv is not None else sys.argv[1:])
    train(parse(argv), argv=[program("fer-train")] + argv)


if __name__ == "__main__":
    raise SystemExit(main())
