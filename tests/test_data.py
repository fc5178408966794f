"""Dataset readers on real (../shared) and fixture data, the prepared cache, and device augmentation."""
import csv

import cv2
import numpy as np
import pytest
import torch

from conftest import SHARED
from fer_core.data import (DatasetError, load_cache, read_affectnet, read_dataset, read_fer2013_csv, read_ferplus,
                           read_image_folder, read_rafdb, save_cache)
from fer_core.data.augment import AugmentConfig, GpuAugment
from fer_core.preprocess import DataConfig, build_transform
from fixtures import face_like, write_class_folders, write_ferplus

FERPLUS_REAL = SHARED / "datasets" / "ferplus"
FER2013_REAL = SHARED / "datasets" / "fer2013"


def test_ferplus_protocols_on_fixture(tmp_path):
    root = write_ferplus(tmp_path, n_train=16, n_valid=8)
    maj = read_ferplus(root, "train")
    assert len(maj) == 16 and maj.dropped == {"unknown_or_nf": 2, "tie": 1}
    assert maj.label_set.names[0] == "neutral" and list(maj.labels[:8]) == list(range(8))
    assert maj.images.shape == (16, 48, 48) and maj.images.dtype == np.uint8 and maj.soft is None
    first = read_ferplus(root, "train", ties="first")
    assert len(first) == 17 and first.labels[-1] == 0  # the neutral/happiness tie goes to neutral
    prob = read_ferplus(root, "valid", protocol="probability")
    assert len(prob) == 9 and np.allclose(prob.soft.sum(1), 1)
    assert np.isclose(prob.soft[0, 0], 0.7) and np.isclose(prob.soft[0, 1], 0.3)


def test_ferplus_bad_files_are_reported_with_paths(tmp_path):
    root = write_ferplus(tmp_path, n_train=8, n_valid=4)
    train = root / "FER2013Train"
    (train / sorted(p.name for p in train.glob("fer*.png"))[0]).write_bytes(b"not a png")
    with open(train / "label.csv", "a", newline="") as f:
        csv.writer(f).writerow(["missing.png", "(0, 0, 48, 48)", 9, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        csv.writer(f).writerow(["short.png", "(0, 0, 48, 48)", 1, 2])
    with pytest.warns(UserWarning, match="3 bad files skipped"):
        ds = read_ferplus(root, "train")
    reasons = dict(ds.errors)
    assert len(ds) == 7
    assert any(p.endswith("missing.png") and r == "missing file" for p, r in ds.errors)
    assert any("unreadable image" == r for r in reasons.values())
    assert any("expected 12 columns" in r for r in reasons.values())
    assert "3 bad files skipped" in ds.report() and "missing.png" in ds.report()
    with pytest.raises(DatasetError, match=r"fer.*\.png: unreadable image"):
        read_ferplus(root, "train", strict=True)


@pytest.mark.skipif(not FERPLUS_REAL.exists(), reason="needs ../shared/datasets/ferplus")
def test_ferplus_real_valid_split():
    ds = read_ferplus(FERPLUS_REAL, "valid")
    assert len(ds) == 3417 and ds.dropped == {"unknown_or_nf": 24, "tie": 138} and not ds.errors
    assert ds.class_counts()["neutral"] == 1249 and ds.class_counts()["contempt"] == 26


@pytest.mark.skipif(not FER2013_REAL.exists(), reason="needs ../shared/datasets/fer2013")
def test_fer2013_real_folders():
    ds = read_dataset("fer2013", FER2013_REAL, "val")
    assert len(ds) == 3579 and len(ds.label_set) == 7 and "contempt" not in ds.label_set.names
    assert ds.class_counts()["happiness"] == 890 and ds.images.shape[1:] == (48, 48)


def test_fer2013_csv(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "fer2013.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(7):
            w.writerow([i, " ".join(map(str, face_like(rng).ravel())), "Training"])
        w.writerow([3, " ".join(map(str, face_like(rng).ravel())), "PublicTest"])
        w.writerow([9, " ".join(map(str, face_like(rng).ravel())), "Training"])
        w.writerow([1, "1 2 3", "Training"])
    with pytest.warns(UserWarning, match="2 bad rows"):
        ds = read_fer2013_csv(p, "train")
    assert len(ds) == 7
    # FER2013 order angry, disgust, fear, happy, sad, surprise, neutral -> canonical names
    assert [ds.label_set.names[j] for j in ds.labels] == ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    assert {why for _, why in ds.errors} == {"label 9 out of range 0..6", "3 pixels, expected 2304"}
    assert len(read_fer2013_csv(p, "val")) == 1


def test_image_folder_synonyms_and_unknown(tmp_path):
    root = write_class_folders(tmp_path / "a", ["Angry", "happy", "Sad"], n_per_class=3)
    ds = read_image_folder(root)
    assert ds.label_set.names == ("happiness", "sadness", "anger") and len(ds) == 9 and ds.grayscale
    write_class_folders(tmp_path / "b", ["happy", "bored"], n_per_class=1)
    with pytest.raises(DatasetError, match="'bored' is not an expression label"):
        read_image_folder(tmp_path / "b")
    write_class_folders(tmp_path / "c", ["happy", "Happiness"], n_per_class=1)
    with pytest.raises(DatasetError, match="two folders name the same class"):
        read_image_folder(tmp_path / "c")


def test_rafdb_layout(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "Image" / "aligned").mkdir(parents=True)
    lines = []
    for i in range(7):
        for split in ("train", "test"):
            name = f"{split}_{i + 1:05d}.jpg"
            lines.append(f"{name} {i + 1}")
            cv2.imwrite(str(tmp_path / "Image" / "aligned" / f"{split}_{i + 1:05d}_aligned.jpg"),
                        face_like(rng, 100, i, 3))
    lines.append("train_00099.jpg 8")
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="1 bad files skipped.*label 8 out of range"):
        ds = read_rafdb(tmp_path, "train")
    assert len(ds) == 7 and ds.images.shape == (7, 100, 100, 3)
    # RAF-DB 1..7 = surprise, fear, disgust, happiness, sadness, anger, neutral
    assert [ds.label_set.names[j] for j in ds.labels] == ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
    assert ds.errors[0][1].startswith("label 8 out of range 1..7")
    assert len(read_rafdb(tmp_path, "test")) == 7


@pytest.mark.parametrize("classes", [7, 8])
def test_affectnet_layout(tmp_path, classes):
    rng = np.random.default_rng(0)
    rows = []
    for i, expr in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]):
        rel = f"{i:03d}/img{i}.jpg"
        (tmp_path / "Manually_Annotated_Images" / f"{i:03d}").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "Manually_Annotated_Images" / rel), face_like(rng, 64 + 8 * i, expr % 8, 3))
        rows.append({"subDirectory_filePath": rel, "face_x": 0, "face_y": 0, "face_width": 64, "face_height": 64,
                     "facial_landmarks": "", "expression": expr, "valence": 0, "arousal": 0})
    with open(tmp_path / "validation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ds = read_affectnet(tmp_path, "val", classes=classes, size=64)
    assert len(ds) == classes and ds.images.shape[1:] == (64, 64, 3)
    assert ds.dropped["non_emotion"] == 3 and ds.dropped["contempt"] == (1 if classes == 7 else 0)
    # AffectNet 0..7 = neutral, happy, sad, surprise, fear, disgust, anger, contempt
    assert [ds.label_set.names[j] for j in ds.labels][:3] == ["neutral", "happiness", "sadness"]


def test_cache_round_trip(tmp_path):
    root = write_ferplus(tmp_path / "fp", n_train=16, n_valid=8)
    splits = {"train": read_ferplus(root, "train", protocol="probability"), "valid": read_ferplus(root, "valid")}
    path = save_cache(splits, tmp_path / "c.npz.xz")
    back = load_cache(path)
    assert set(back) == {"train", "valid"}
    for k in back:
        assert np.array_equal(back[k].images, splits[k].images) and np.array_equal(back[k].labels, splits[k].labels)
        assert back[k].label_set == splits[k].label_set and back[k].dropped == splits[k].dropped
    assert np.allclose(back["train"].soft, splits["train"].soft) and back["valid"].soft is None
    (tmp_path / "bad.npz.xz").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable dataset cache"):
        load_cache(tmp_path / "bad.npz.xz")


def test_augment_is_seeded_and_shaped():
    imgs = torch.randint(0, 256, (6, 48, 48), dtype=torch.uint8)
    targets = torch.eye(8)[:6]
    aug = GpuAugment(112, (0.5,) * 3, (0.5,) * 3, AugmentConfig(mixup=0.4, cutmix=1.0, mix_p=1.0))
    x1, t1 = aug(imgs, targets, torch.Generator().manual_seed(3))
    x2, t2 = aug(imgs, targets, torch.Generator().manual_seed(3))
    x3, _ = aug(imgs, targets, torch.Generator().manual_seed(4))
    assert x1.shape == (6, 3, 112, 112) and torch.equal(x1, x2) and torch.equal(t1, t2) and not torch.equal(x1, x3)
    assert torch.allclose(t1.sum(1), torch.ones(6))
    # with every augmentation off it is exactly the deterministic eval transform
    half = dict(mean=(0.5,) * 3, std=(0.5,) * 3)
    plain = GpuAugment(112, (0.5,) * 3, (0.5,) * 3, AugmentConfig(flip=0, affine_p=0, erase_p=0))
    x, _ = plain(imgs, targets, torch.Generator().manual_seed(0))
    ref = build_transform(DataConfig((112,), **half))(imgs)
    assert (x - ref).abs().max() < 0.05  # bilinear resampling vs antialiased resize
    flip_only = GpuAugment(48, (0.5,) * 3, (0.5,) * 3, AugmentConfig(flip=1.0, affine_p=0, erase_p=0))
    xf, _ = flip_only(imgs, targets, torch.Generator().manual_seed(0))
    assert torch.allclose(xf, build_transform(DataConfig((48,), **half))(imgs, flip=True), atol=1e-5)


def test_augment_feeds_a_fusion_each_size_from_the_same_draw():
    """Several input sizes (a fusion's branches): one affine, one erased box, one mix, each resampled from the
    same uint8 images; at equal sizes the outputs are identical, and the targets are mixed once."""
    imgs = torch.randint(0, 256, (6, 48, 48), dtype=torch.uint8)
    targets = torch.eye(8)[:6]
    cfg = AugmentConfig(erase_p=1.0, mixup=0.4, cutmix=1.0, mix_p=1.0)
    (a, b, c), t = GpuAugment((64, 80, 64), (0.5,) * 3, (0.5,) * 3, cfg)(imgs, targets, torch.Generator().manual_seed(5))
    single, t1 = GpuAugment(64, (0.5,) * 3, (0.5,) * 3, cfg)(imgs, targets, torch.Generator().manual_seed(5))
    assert a.shape[-1] == 64 and b.shape[-1] == 80 and torch.equal(a, c) and torch.equal(a, single)
    assert torch.equal(t, t1)
    small = torch.nn.functional.interpolate(b, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    assert (small - a).abs().mean() < 0.1  # the same picture at two sizes
