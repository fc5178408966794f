"""Dataset readers on real (FER_DATA) and fixture data, the layout from the official files, the prepared cache, and
device augmentation."""
import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import DATA, needs_data
from fer_core.data import (DataNotFound, DatasetError, load_cache, read_affectnet, read_dataset, read_fer2013_csv,
                           read_ferplus, read_image_folder, read_rafdb, resolve_data, save_cache)
from fer_core.data.augment import AugmentConfig, GpuAugment
from fer_core.preprocess import DataConfig, build_transform
from fixtures import face_like, write_class_folders, write_ferplus

FERPLUS_REAL = DATA / "ferplus"
FER2013_REAL = DATA / "fer2013"


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


@needs_data("ferplus")
def test_ferplus_real_valid_split():
    ds = read_ferplus(FERPLUS_REAL, "valid")
    assert len(ds) == 3417 and ds.dropped == {"unknown_or_nf": 24, "tie": 138} and not ds.errors
    assert ds.class_counts()["neutral"] == 1249 and ds.class_counts()["contempt"] == 26


@needs_data("fer2013")
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


# -- the layout from the official files (fer-data layout) ----------------------------------------------------------

VOTE_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]


def write_official(root, rows, labels=None):
    """A tiny fer2013.csv and FER+ copy: ``rows`` of (emotion, image, Usage, FER+ name, votes); ``labels`` the
    votes of each FER+ folder's label.csv by name (default: the rows' own)."""
    fer, ferplus = root / "fer2013.csv", root / "FERPlus"
    ferplus.mkdir(parents=True)
    with open(fer, "w", newline="") as f, open(ferplus / "fer2013new.csv", "w", newline="") as g:
        w, wn = csv.writer(f), csv.writer(g)
        w.writerow(["emotion", "pixels", "Usage"])
        wn.writerow(["Usage", "Image name"] + VOTE_COLUMNS)
        for emotion, img, usage, name, votes in rows:
            w.writerow([emotion, " ".join(map(str, img.ravel())), usage])
            wn.writerow([usage, name] + votes)
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    for usage, folder in folders.items():
        (ferplus / "data" / folder).mkdir(parents=True)
        own = {name: votes for _, _, u, name, votes in rows if u == usage and name}
        with open(ferplus / "data" / folder / "label.csv", "w", newline="") as f:
            csv.writer(f).writerows([name, "(0, 0, 48, 48)"] + (labels or {}).get(name, votes)
                                    for name, votes in own.items())
    return fer, ferplus


def test_layout_from_the_official_files(tmp_path, monkeypatch):
    """As FER+'s generate_training_data.py: row i's pixels under row i's FER+ name (not its number), the folder by
    Usage, rows without a name skipped, a repeated name kept from its later row; label.csv is FER+'s own; FER2013's
    class folders hold the same images; the readers read it all back."""
    from fer_core.commands.prepare_data import main

    rng = np.random.default_rng(0)
    imgs = [face_like(rng, cls=i % 8) for i in range(7)]
    v = [[7, 3, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 1, 9], [0, 8, 2, 0, 0, 0, 0, 0, 0, 0]]
    rows = [(6, imgs[0], "Training", "fer0000000.png", v[0]),
            (3, imgs[1], "Training", "", v[1]),  # not a face: no name, no image
            (0, imgs[2], "Training", "fer0000001.png", v[2]),  # the names drift from the row numbers
            (3, imgs[3], "Training", "fer0000002.png", v[2]),
            (3, imgs[4], "Training", "fer0000002.png", v[0]),  # a repeated name: the later row's image is kept
            (5, imgs[5], "PublicTest", "fer0000004.png", v[0]),
            (1, imgs[6], "PrivateTest", "fer0000005.png", v[0])]
    fer, ferplus = write_official(tmp_path, rows, labels={"fer0000004.png": [1, 9, 0, 0, 0, 0, 0, 0, 0, 0]})
    monkeypatch.setenv("FER_DATA", str(tmp_path / "data"))
    assert main(["layout", "--fer2013-csv", str(fer), "--ferplus", str(ferplus)]) == 0
    fp, f13 = tmp_path / "data" / "ferplus", tmp_path / "data" / "fer2013"
    assert sorted(p.name for p in (fp / "FER2013Train").glob("*.png")) == [f"fer000000{i}.png" for i in range(3)]
    for name, img in (("fer0000001.png", imgs[2]), ("fer0000002.png", imgs[4])):
        assert np.array_equal(cv2.imread(str(fp / "FER2013Train" / name), cv2.IMREAD_GRAYSCALE), img)
    assert (fp / "FER2013Valid" / "label.csv").read_text() == (ferplus / "data/FER2013Valid/label.csv").read_text()
    assert (fp / "FER2013Test" / "fer0000005.png").exists() and (f13 / "test" / "disgust" / "fer0000005.png").exists()
    assert sorted(str(p.relative_to(f13)) for p in (f13 / "train").rglob("*.png")) == [
        "train/angry/fer0000001.png", "train/happy/fer0000002.png", "train/neutral/fer0000000.png"]
    valid = read_dataset("ferplus", split="valid")  # from FER_DATA: label.csv's votes, not fer2013new.csv's
    assert valid.label_set.names[valid.labels[0]] == "happiness" and len(valid) == 1
    train = read_dataset("ferplus", split="train", protocol="probability")
    assert len(train) == 3 and np.allclose(train.soft[0][:2], [0.7, 0.3])
    assert read_dataset("fer2013", split="train").class_counts() == {"neutral": 1, "happiness": 1, "anger": 1}
    with pytest.raises(SystemExit, match="exists"):  # never over what is there unless asked
        main(["layout", "--fer2013-csv", str(fer), "--ferplus", str(ferplus)])


def test_layout_refuses_files_that_do_not_belong_together(tmp_path):
    from fer_core.data.layout import write_layout

    img = face_like(np.random.default_rng(0))
    fer, ferplus = write_official(tmp_path, [(0, img, "Training", "fer0000000.png", [9, 1] + [0] * 8),
                                             (0, img, "PublicTest", "fer0000001.png", [9, 1] + [0] * 8)])
    lines = fer.read_text().splitlines()
    fer.write_text("\n".join(lines[:2] + [lines[2].replace("PublicTest", "Training")]) + "\n")
    with pytest.raises(DatasetError, match="not of the same release"):
        write_layout(fer, ferplus, tmp_path / "out")
    fer.write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(DatasetError, match="has 1 rows and .* 2"):
        write_layout(fer, ferplus, tmp_path / "out")
    assert not (tmp_path / "out" / "ferplus").exists()  # nothing half-written is left in place
    (ferplus / "data" / "FER2013Test" / "label.csv").unlink()
    with pytest.raises(DataNotFound, match="git clone https://github.com/microsoft/FERPlus"):
        write_layout(fer, ferplus, tmp_path / "out")


def test_missing_data_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA", str(tmp_path))
    assert resolve_data("ferplus") == ("ferplus", tmp_path / "ferplus")
    assert resolve_data("fer2013:/x/fer2013.csv") == ("fer2013", Path("/x/fer2013.csv"))
    with pytest.raises(DataNotFound) as e:
        read_dataset("ferplus", split="valid")
    msg = str(e.value)
    assert str(tmp_path / "ferplus") in msg and "FER_DATA=" in msg
    for what in ("fer2013.csv", "kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition",
                 "github.com/microsoft/FERPlus", "fer-data layout --fer2013-csv", "Get the data"):
        assert what in msg
    with pytest.raises(DataNotFound, match="fer-data cache"):
        load_cache(tmp_path / "nothing.npz.xz")


@needs_data("ferplus", "fer2013")
def test_layout_reproduces_the_real_layout(tmp_path):
    """fer2013.csv and fer2013new.csv rebuilt from the first images of the real layout's train and valid splits
    (in a temporary folder), laid out again: the same pixels, the same label.csv rows, the same class folders."""
    from fer_core.data.layout import FER2013_CLASSES, write_layout

    rows, labels, where = [], {}, {}
    for usage, folder, split in (("Training", "FER2013Train", "train"), ("PublicTest", "FER2013Valid", "val")):
        for cls in (FER2013_REAL / split).iterdir():
            where.update({p.name: (split, cls.name) for p in cls.glob("*.png")})
        with open(FERPLUS_REAL / folder / "label.csv", newline="") as f:
            for row in list(csv.reader(f))[:40]:
                img = cv2.imread(str(FERPLUS_REAL / folder / row[0]), cv2.IMREAD_GRAYSCALE)
                rows.append((FER2013_CLASSES.index(where[row[0]][1]), img, usage, row[0], row[2:]))
                labels[row[0]] = row
    fer, ferplus = write_official(tmp_path, rows)
    write_layout(fer, ferplus, tmp_path / "data", progress=False)
    for usage, folder, split in (("Training", "FER2013Train", "train"), ("PublicTest", "FER2013Valid", "val")):
        with open(tmp_path / "data" / "ferplus" / folder / "label.csv", newline="") as f:
            ours = list(csv.reader(f))
        assert len(ours) == 40 and all(labels[r[0]] == r for r in ours)
        for name, *_ in ours:
            a = cv2.imread(str(tmp_path / "data" / "ferplus" / folder / name), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(a, cv2.imread(str(FERPLUS_REAL / folder / name), cv2.IMREAD_UNCHANGED))
            b = tmp_path / "data" / "fer2013" / split / where[name][1] / name
            assert np.array_equal(cv2.imread(str(b), cv2.IMREAD_UNCHANGED), a)


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
