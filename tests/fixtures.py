"""Small datasets written by the tests in each dataset's official layout (no real images are committed)."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from fer_core.labels import CANONICAL


def face_like(rng, size=48, cls=0, channels=1):
    """A smooth synthetic image whose pattern depends on the class, so tiny models can learn something."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.35 * np.sin(2 * np.pi * ((cls % 4 + 1) * xx + (cls // 4 + 1) * yy))
    img = img + rng.normal(0, 0.08, img.shape)
    img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return img if channels == 1 else np.stack([img, np.roll(img, 3, 0), np.roll(img, 5, 1)], -1)


def write_ferplus(root: Path, n_train=64, n_valid=32, seed=0) -> Path:
    """FER+ layout with PNGs and a headerless label.csv; includes a tie, an NF-majority and an unknown row."""
    rng = np.random.default_rng(seed)
    for folder, n in (("FER2013Train", n_train), ("FER2013Valid", n_valid)):
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            cls = i % 8
            name = f"fer{seed:02d}{folder[7:9]}{i:05d}.png"
            cv2.imwrite(str(d / name), face_like(rng, cls=cls))
            votes = [0] * 10
            votes[cls] = 7
            votes[(cls + 1) % 8] = 3
            rows.append([name, "(0, 0, 48, 48)"] + votes)
        rows.append(["tie.png", "(0, 0, 48, 48)", 5, 5, 0, 0, 0, 0, 0, 0, 0, 0])
        rows.append(["nf.png", "(0, 0, 48, 48)", 1, 0, 0, 0, 0, 0, 0, 0, 0, 9])
        rows.append(["unk.png", "(0, 0, 48, 48)", 2, 0, 0, 0, 0, 0, 0, 0, 8, 0])
        for name in ("tie.png", "nf.png", "unk.png"):
            cv2.imwrite(str(d / name), face_like(rng))
        with open(d / "label.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return root


def write_class_folders(root: Path, names, n_per_class=4, size=48, channels=1, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for ci, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img = face_like(rng, size, CANONICAL.index(name.lower()) if name.lower() in CANONICAL else ci, channels)
            cv2.imwrite(str(root / name / f"{i:04d}.png"), img if channels == 1 else img[..., ::-1])
    return root


def make_weights(root: Path, seed: int = 0, tta_flip: bool = False) -> Path:
    """Untrained but complete weights for the three shipped names (ddamfn, resnet_dda, fusion) in a
    weights/-style folder, at the shipped input sizes (DDAMFN 64 px, ResNet+DDA 80 px, the fusion feeding each
    branch its own size from the same 48 px crop): real architectures (a slim ResNet18+DDA), real configs, the
    fusion referencing its branches."""
    import torch

    from fer_core import create_model, save_pretrained
    from fer_core.weights import build_config

    torch.manual_seed(seed)
    a = create_model("ddamfn", input_size=64).eval()
    b = create_model("resnet18_dda", dda_stages=(3, 4), dda_width=64, c_mid=64).eval()
    for name, m, size in (("ddamfn", a, 64), ("resnet_dda", b, 80)):
        save_pretrained(m, root / name, build_config(m, label_set="ferplus", input_size=(3, size, size),
                                                     tta_flip=tta_flip, temperature=1.3))
    fusion = create_model("fusion", branch_a=a, branch_b=b, branch_input_sizes=[(64, 64), (80, 80)]).eval()
    with torch.no_grad():
        fusion.head.weight.normal_(0, 0.05)
    save_pretrained(fusion, root / "fusion", build_config(fusion, label_set="ferplus", input_size=(3, 80, 80),
                                                          tta_flip=tta_flip),
                    branch_refs={"branch_a": "../ddamfn", "branch_b": "../resnet_dda"})
    return root
