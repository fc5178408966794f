"""Training throughput, end to end (data, augmentation, forward, backward, step), measured in one run:

* **reference**: the way the reference repos train: torchvision ImageFolder over PNG files, PIL transforms in
  DataLoader workers (resize, flip, p=0.2 rotation + padded crop, normalise, random erasing), fp32;
* **ours**: fer_core's trainer (``fer_core.train.train``: data resident on the device as uint8, batched device
  augmentation, bf16 autocast + channels_last on CUDA, optional torch.compile), timed over its second epoch;
* **model only**: the same model, precision and layout on a fixed random batch already on the device (the ceiling).

    python bench/train_throughput.py --json bench_train.json                        # CPU here, GPU if present
    python bench/train_throughput.py --steps 50 --compile --json out.json           # on a GPU

FER2013 class folders serve both loops (the same 48x48 pixels as FER+); pass --image-folder to point elsewhere.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from torchvision import transforms as T  # noqa: E402

from fer_core import create_model  # noqa: E402
from fer_core.data import read_image_folder, save_cache  # noqa: E402
from fer_core.data.datasets import ImageDataset  # noqa: E402
from fer_core.models import attention_loss  # noqa: E402
from fer_core.train import TrainConfig, train  # noqa: E402

CASES = {"ddamfn": ("ddamfn", 112), "resnet34_dda": ("resnet34_dda", 224)}


def reference_loop(name, size, folder, batch, steps, workers, device) -> float:
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
    model = create_model(name, num_classes=len(ds.classes)).to(device).train()
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


def model_only(name, size, batch, steps, device, compile_) -> float:
    model = create_model(name, num_classes=7).to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    step = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,), device=device)
    for i in range(steps + 2):
        if i == 2:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(step(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def ours(name, size, cache, batch, steps, compile_, out_dir) -> float:
    cfg = TrainConfig(model=name, data=f"cache:{cache}", epochs=2, batch_size=batch, limit_train=batch * steps,
                      warmup_epochs=0.5, compile=compile_, tta_flip=False, out_dir=str(out_dir), input_size=size,
                      log_every=10**9)
    train(cfg, argv=["bench"])
    rows = (Path(out_dir) / "metrics.csv").read_text().splitlines()
    return float(rows[-1].split(",")[7])  # img_per_s of the second epoch


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Training throughput: our trainer vs a reference-style loop.")
    ap.add_argument("--image-folder", default=str(ROOT.parent / "shared/datasets/fer2013/train"))
    ap.add_argument("--models", default="ddamfn,resnet34_dda")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per loop (default: 30 on GPU, 4 on CPU)")
    ap.add_argument("--batch", default=None, help="per model, e.g. ddamfn=256,resnet34_dda=48")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    steps = a.steps or (30 if cuda else 4)
    batches = {"ddamfn": 256, "resnet34_dda": 48} if cuda else {"ddamfn": 32, "resnet34_dda": 8}
    if a.batch:
        batches.update({k: int(v) for k, v in (kv.split("=") for kv in a.batch.split(","))})
    torch.manual_seed(0)
    full = read_image_folder(a.image_folder, gray=True, size=48)
    mix = torch.randperm(len(full), generator=torch.Generator().manual_seed(0)).numpy()  # all classes in the subset
    full.images, full.labels, full.paths = full.images[mix], full.labels[mix], [full.paths[i] for i in mix]
    results = {"device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
               "date": time.strftime("%Y-%m-%d"), "steps": steps, "compile": a.compile, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for key in a.models.split(","):
            name, size = CASES[key]
            b = batches[key]
            n = b * (steps + 2)
            sub = lambda lo, hi: ImageDataset(full.images[lo:hi], full.labels[lo:hi], full.label_set,  # noqa: E731
                                              full.paths[lo:hi], name="bench")
            cache = save_cache({"train": sub(0, n), "valid": sub(n, n + 64)}, Path(tmp) / f"{key}.npz.xz", preset=0)
            r = {"batch": b, "input_size": size}
            r["reference_img_s"] = reference_loop(name, size, a.image_folder, b, steps, a.workers, device)
            r["ours_img_s"] = ours(name, size, cache, b, steps, a.compile, Path(tmp) / f"run_{key}")
            r["model_only_img_s"] = model_only(name, size, b, steps, device, a.compile)
            r["ratio_vs_reference"] = r["ours_img_s"] / r["reference_img_s"]
            r["fraction_of_model_only"] = r["ours_img_s"] / r["model_only_img_s"]
            results["models"][key] = r
            print(f"{key}@{size} batch {b}: reference {r['reference_img_s']:.1f} img/s, ours {r['ours_img_s']:.1f} "
                  f"img/s ({r['ratio_vs_reference']:.2f}x), model only {r['model_only_img_s']:.1f} img/s "
                  f"(ours = {100 * r['fraction_of_model_only']:.0f}% of it)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
