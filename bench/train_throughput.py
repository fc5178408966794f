"""Training throughput, end to end (data, augmentation, forward, backward, step), measured in one run:

* **reference**: the way the seed repositories train: torchvision ImageFolder over PNG files, PIL transforms in
  DataLoader workers (resize, flip, p=0.2 rotation + padded crop, normalise, random erasing), fp32, at the seeds'
  input size (DDAMFN 112, ResNet+DDA 224), the same network as ours;
* **ours**: fer_core's trainer (``fer_core.train.train``) at each shipped configuration (input size, precision,
  memory format, compile as the shipped weights were trained): data resident as uint8, batched augmentation,
  bf16 autocast where the CPU computes bf16 natively; timed over its second epoch;
* **model only**: the same network, size, precision and layout as ours on a fixed random batch (the ceiling).

``ratio_vs_reference`` = ours / reference, per case, in images per second.

    python -m bench.train_throughput --json bench_train.json                # CPU (all cores), or GPU if present
    python -m bench.train_throughput --threads 1 --cases ddamfn             # one core, one case

FER2013 class folders serve both loops (the same 48x48 pixels as FER+); pass --image-folder to point elsewhere.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms as T

from fer_core import create_model
from fer_core.data import dataset_root, read_image_folder, require, save_cache
from fer_core.data.datasets import ImageDataset
from fer_core.hardware import AMP_DTYPES, cpu_has_native_bf16, resolve_amp
from fer_core.models import attention_loss, get_entry
from fer_core.train import TrainConfig, train

# What ships (weights/*/config.json records the same) against the seed's loop at the seed's input size.
CASES = {
    "ddamfn": {"model": "ddamfn", "args": {"zero_init_residual": True}, "size": 64, "amp": "off", "compile": True,
               "reference_size": 112},
    "resnet_dda": {"model": "resnet18_dda", "args": {"dda_stages": [3, 4], "drop_rate": 0.4}, "size": 64,
                   "amp": "auto", "compile": False, "reference_size": 224},
}


def reference_loop(name, args, size, folder, batch, steps, workers, device) -> float:
    tf = T.Compose([
        T.Resize((size, size)), T.RandomHorizontalFlip(),
        T.RandomApply([T.RandomRotation(5), T.RandomCrop(size, padding=8)], p=0.2),
        T.Grayscale(3), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        T.RandomErasing(scale=(0.02, 0.25)),
    ])
    ds = torchvision.datasets.ImageFolder(folder, tf)
    n = min(len(ds), batch * (steps + 2))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=batch, shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0)
    model = create_model(name, num_classes=len(ds.classes), **args).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    done, t0 = 0, None
    for i, (x, y) in enumerate(loader):
        if i == 2:  # after two warm-up steps
            _sync(device)
            t0, done = time.perf_counter(), 0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model.forward_details(x)
        loss = F.cross_entropy(out["logits"], y)
        if "head_maps" in out:
            loss = loss + attention_loss(out["head_maps"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += len(y)
    _sync(device)
    return done / (time.perf_counter() - t0)


def model_only(case, batch, steps, device) -> float:
    name, size = case["model"], case["size"]
    model = create_model(name, num_classes=7, **_sized(case, size)).to(device).train()
    model = model.to(memory_format=torch.channels_last)
    step = torch.compile(model) if case["compile"] else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,), device=device)
    dtype = AMP_DTYPES[resolve_amp(case["amp"], device)]
    for i in range(steps + 2):
        if i == 2:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(step(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def ours(case, cache, batch, steps, out_dir) -> float:
    cfg = TrainConfig(model=case["model"], model_args=dict(case["args"]), data=f"cache:{cache}", epochs=2,
                      batch_size=batch, limit_train=batch * steps, warmup_epochs=0.5, amp=case["amp"],
                      compile=case["compile"], tta_flip=False, out_dir=str(out_dir), input_size=case["size"],
                      log_every=10**9)
    train(cfg, argv=["bench"])
    rows = list(csv.DictReader(open(Path(out_dir) / "metrics.csv")))
    return float(rows[-1]["img_per_s"])  # the second epoch: compiling and warm-up are behind it


def _sized(case, size: int) -> dict:
    """The case's model arguments, with the input size for models whose layers follow it."""
    args = dict(case["args"])
    if get_entry(case["model"]).sized_by_input:
        args["input_size"] = size
    return args


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Training throughput: our trainer vs a reference-style loop.")
    ap.add_argument("--image-folder", default=str(dataset_root("fer2013") / "train"),
                    help="FER2013 class folders of 48x48 PNGs (default: $FER_DATA/fer2013/train)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--steps", type=int, default=None, help="timed steps per loop (default: 30 on GPU, 4 on CPU)")
    ap.add_argument("--batch", type=int, default=None, help="batch of every loop (default: 256 on GPU, 64 on CPU)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reference loop's workers")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    steps = a.steps or (30 if cuda else 4)
    batch = a.batch or (256 if cuda else 64)
    torch.manual_seed(0)
    full = read_image_folder(require("fer2013", a.image_folder), gray=True, size=48)
    mix = torch.randperm(len(full), generator=torch.Generator().manual_seed(0)).numpy()  # all classes in the subset
    full.images, full.labels, full.paths = full.images[mix], full.labels[mix], [full.paths[i] for i in mix]
    results = {"device": torch.cuda.get_device_name() if cuda else
               f"cpu ({torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()})",
               "date": time.strftime("%Y-%m-%d"), "steps": steps, "batch": batch, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for key in a.cases.split(","):
            case = CASES[key]
            n = batch * (steps + 2)
            sub = lambda lo, hi: ImageDataset(full.images[lo:hi], full.labels[lo:hi], full.label_set,  # noqa: E731
                                              full.paths[lo:hi], name="bench")
            cache = save_cache({"train": sub(0, n), "valid": sub(n, n + 64)}, Path(tmp) / f"{key}.npz.xz", preset=0)
            r = {"model": case["model"], "model_args": case["args"], "input_size": case["size"],
                 "precision": resolve_amp(case["amp"], device), "compile": case["compile"],
                 "reference_input_size": case["reference_size"]}
            r["reference_img_s"] = reference_loop(case["model"], _sized(case, case["reference_size"]),
                                                  case["reference_size"], a.image_folder, batch, steps, a.workers,
                                                  device)
            r["ours_img_s"] = ours(case, cache, batch, steps, Path(tmp) / f"run_{key}")
            r["model_only_img_s"] = model_only(case, batch, steps, device)
            r["ratio_vs_reference"] = r["ours_img_s"] / r["reference_img_s"]
            r["fraction_of_model_only"] = r["ours_img_s"] / r["model_only_img_s"]
            results["cases"][key] = r
            print(f"{key}: reference (fp32, {case['reference_size']} px) {r['reference_img_s']:.1f} img/s; ours "
                  f"({r['precision']}, {case['size']} px{', compiled' if case['compile'] else ''}) "
                  f"{r['ours_img_s']:.1f} img/s = {r['ratio_vs_reference']:.2f}x; model only "
                  f"{r['model_only_img_s']:.1f} img/s (ours = {100 * r['fraction_of_model_only']:.0f}% of it)",
                  flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
