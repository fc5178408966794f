"""Dataset readers: FER+, FER2013 (CSV and class folders), RAF-DB basic, AffectNet, any image-folder tree.

Every reader returns an :class:`ImageDataset`: decoded uint8 images (``N x H x W`` grayscale or ``N x H x W x 3``
RGB), labels as indices into ``label_set`` (the classes present, in canonical order, so FER2013 / RAF-DB /
AffectNet-7 map to the first seven canonical classes and AffectNet-8 / FER+ to all eight), optional soft targets
(FER+ vote distributions), and the source path of every image. Bad files (unreadable image, label out of range,
image of the wrong size) are not silently skipped: each is recorded in ``errors`` with its path and reason,
counted, and reported by :meth:`ImageDataset.report`; ``strict=True`` makes the first one raise.
"""
from __future__ import annotations

import csv
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..labels import AFFECTNET7, AFFECTNET8, CANONICAL, FER2013, FERPLUS, RAFDB, LabelSet, canonical_name, get_label_set
from .root import GET_THE_DATA, DatasetError, dataset_root, require

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
FERPLUS_DIRS = {"train": "FER2013Train", "valid": "FER2013Valid", "val": "FER2013Valid", "test": "FER2013Test"}
FERPLUS_COLUMNS = CANONICAL + ("unknown", "NF")


@dataclass
class ImageDataset:
    images: np.ndarray  # uint8, N x H x W (grayscale) or N x H x W x 3 (RGB)
    labels: np.ndarray  # int64 indices into label_set
    label_set: LabelSet
    paths: list[str]
    soft: np.ndarray | None = None  # float32 N x C target distributions, or None
    errors: list[tuple[str, str]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # by protocol (not errors), e.g. {"tie": 12}
    name: str = ""

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])

    @property
    def grayscale(self) -> bool:
        return self.images.ndim == 3

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_set))
        return {n: int(c) for n, c in zip(self.label_set.names, counts)}

    def report(self) -> str:
        lines = [f"{self.name}: {len(self)} images, {len(self.label_set)} classes {self.class_counts()}"]
        if self.dropped:
            lines.append(f"  dropped by protocol: {self.dropped}")
        if self.errors:
            lines.append(f"  {len(self.errors)} bad files skipped:")
            lines += [f"    {p}: {why}" for p, why in self.errors[:20]]
            if len(self.errors) > 20:
                lines.append(f"    ... and {len(self.errors) - 20} more")
        return "\n".join(lines)


def _decode(path: str, gray: bool, size: int | None):
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    try:
        img = cv2.imread(path, flag)
    except cv2.error as e:
        return None, f"unreadable image ({e})"
    if img is None:
        return None, "unreadable image" if os.path.exists(path) else "missing file"
    if not gray:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size is not None and img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR)
    return img, None


def build_dataset(items, label_set: LabelSet, *, gray: bool, size: int | None, name: str, strict: bool = False,
                  soft=None, errors=None, dropped=None, workers: int = 8) -> ImageDataset:
    """Decode ``items`` (a list of ``(path, label_index)``) in threads into an :class:`ImageDataset`."""
    errors = list(errors or [])
    paths = [p for p, _ in items]
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda p: _decode(p, gray, size), paths))
    keep, images = [], []
    shape = None
    for i, (img, why) in enumerate(decoded):
        if why is None and shape is None:
            shape = img.shape
        if why is None and img.shape != shape:
            why = f"image is {img.shape[1]}x{img.shape[0]}, the others {shape[1]}x{shape[0]} (pass size= to resize)"
        if why is None and not 0 <= items[i][1] < len(label_set):
            why = f"label {items[i][1]} out of range 0..{len(label_set) - 1}"
        if why is not None:
            if strict:
                raise DatasetError(f"{paths[i]}: {why}")
            errors.append((paths[i], why))
            continue
        keep.append(i)
        images.append(img)
    if errors:
        warnings.warn(f"{name}: {len(errors)} bad files skipped, e.g. {errors[0][0]}: {errors[0][1]}", stacklevel=3)
    if not images:
        raise DatasetError(f"{name}: no usable images" + (f"; first error: {errors[0]}" if errors else ""))
    return ImageDataset(
        images=np.stack(images).astype(np.uint8),
        labels=np.array([items[i][1] for i in keep], dtype=np.int64),
        label_set=label_set,
        paths=[paths[i] for i in keep],
        soft=None if soft is None else np.asarray(soft, dtype=np.float32)[keep],
        errors=errors,
        dropped=dict(dropped or {}),
        name=name,
    )


def _present(names) -> LabelSet:
    """The canonical-order label set of the classes in ``names``."""
    names = set(names)
    return get_label_set([c for c in CANONICAL if c in names])


# -- FER+ --------------------------------------------------------------------------------------------------------

def read_ferplus(root, split: str = "train", protocol: str = "majority", ties: str = "drop", strict=False,
                 size=None) -> ImageDataset:
    """FER+ in its official layout (``FER2013Train/`` etc., each with PNGs and a headerless ``label.csv``:
    file name, face box, then ten votes: the 8 emotions, unknown, not-a-face).

    * ``majority``: the label is the emotion with the most votes; images whose top vote is *unknown* or *NF* are
      dropped, and so are ties between two top classes (``ties="drop"``, as in most papers; ``ties="first"``
      keeps the first class in canonical order).
    * ``probability``: the same images (top vote an emotion), with the normalised 8 emotion votes as a soft
      target; the hard label (for metrics) is the top vote, ties going to the first class.
    """
    if protocol not in ("majority", "probability"):
        raise ValueError(f"protocol must be 'majority' or 'probability', got {protocol!r}")
    if ties not in ("drop", "first"):
        raise ValueError(f"ties must be 'drop' or 'first', got {ties!r}")
    folder = Path(root) / FERPLUS_DIRS.get(split, split)
    csv_path = folder / "label.csv"
    if not csv_path.exists():
        raise DatasetError(f"{csv_path}: not found (expected the FER+ layout {sorted(set(FERPLUS_DIRS.values()))}, "
                           f"as `fer-data layout` writes it: {GET_THE_DATA})")
    items, soft, errors, dropped = [], [], [], {"unknown_or_nf": 0, "tie": 0}
    with open(csv_path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            where = f"{csv_path}:{lineno}"
            if len(row) != 12:
                errors.append((where, f"expected 12 columns, got {len(row)}"))
                continue
            if not row[0].strip():
                dropped["unknown_or_nf"] += 1  # the FER+ tool leaves the name empty for dropped images
                continue
            try:
                votes = np.array([float(v) for v in row[2:]], dtype=np.float32)
            except ValueError:
                errors.append((str(folder / row[0]), f"non-numeric votes {row[2:]}"))
                continue
            if votes.min() < 0 or votes.sum() <= 0:
                errors.append((str(folder / row[0]), f"invalid votes {votes.tolist()}"))
                continue
            top = votes.max()
            if np.argmax(votes) >= 8:
                dropped["unknown_or_nf"] += 1
                continue
            emo = votes[:8]
            winners = np.flatnonzero(emo == top)
            if protocol == "majority" and len(winners) > 1 and ties == "drop":
                dropped["tie"] += 1
                continue
            items.append((str(folder / row[0]), int(winners[0])))
            soft.append(emo / emo.sum())
    return build_dataset(items, FERPLUS, gray=True, size=size, name=f"ferplus/{split}/{protocol}", strict=strict,
                         soft=soft if protocol == "probability" else None, errors=errors, dropped=dropped)


# -- FER2013 -----------------------------------------------------------------------------------------------------

FER2013_USAGE = {"train": "Training", "val": "PublicTest", "valid": "PublicTest", "test": "PrivateTest"}


def read_fer2013_csv(csv_path, split: str = "train", strict=False) -> ImageDataset:
    """The Kaggle ``fer2013.csv`` (``emotion,pixels,Usage``; emotion 0-6 in FER2013's order)."""
    usage = FER2013_USAGE.get(split, split)
    target = _present(FER2013.names)
    remap = [target.names.index(n) for n in FER2013.names]
    images, labels, paths, errors = [], [], [], []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames or ()):
            raise DatasetError(f"{csv_path}: expected columns emotion,pixels,Usage; got {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            if row["Usage"] != usage:
                continue
            where = f"{csv_path}:{lineno}"
            try:
                emotion = int(row["emotion"])
                px = np.array(row["pixels"].split(), dtype=np.int64)
            except ValueError as e:
                why = f"unparsable row ({e})"
            else:
                why = (f"label {emotion} out of range 0..6" if not 0 <= emotion <= 6 else
                       f"{px.size} pixels, expected 2304" if px.size != 2304 else
                       "pixel values outside 0..255" if px.min() < 0 or px.max() > 255 else None)
            if why:
                if strict:
                    raise DatasetError(f"{where}: {why}")
                errors.append((where, why))
                continue
            images.append(px.astype(np.uint8).reshape(48, 48))
            labels.append(remap[emotion])
            paths.append(where)
    if errors:
        warnings.warn(f"{csv_path}: {len(errors)} bad rows skipped, e.g. {errors[0]}", stacklevel=2)
    if not images:
        raise DatasetError(f"{csv_path}: no rows with Usage={usage}")
    return ImageDataset(np.stack(images), np.array(labels, dtype=np.int64), target, paths, errors=errors,
                        name=f"fer2013-csv/{split}")


# -- image folders -----------------------------------------------------------------------------------------------

def read_image_folder(root, *, gray: bool | None = None, size: int | None = None, strict=False,
                      name: str | None = None) -> ImageDataset:
    """Any tree ``root/<class>/<image>`` whose folder names are expression names (case-insensitive,
    synonyms such as angry/anger, happy/happiness); an unknown folder name is an error, never a new class."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root}: no class folders inside")
    mapped = {}
    for d in class_dirs:
        try:
            mapped[d] = canonical_name(d.name)
        except ValueError:
            raise DatasetError(f"{d}: folder name {d.name!r} is not an expression label") from None
    if len(set(mapped.values())) != len(mapped):
        raise DatasetError(f"{root}: two folders name the same class: {mapped}")
    labels = _present(mapped.values())
    items = []
    for d, cname in mapped.items():
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                items.append((str(p), labels.names.index(cname)))
    if gray is None:  # decide from the first image
        probe = cv2.imread(items[0][0], cv2.IMREAD_UNCHANGED) if items else None
        gray = probe is not None and probe.ndim == 2
    return build_dataset(items, labels, gray=gray, size=size, name=name or f"folder:{root.name}", strict=strict)


def read_fer2013_folders(root, split: str = "train", strict=False) -> ImageDataset:
    """FER2013 as class folders (``train/angry/...``, ``val/...``, ``test/...``)."""
    sub = {"valid": "val", "public_test": "val"}.get(split, split)
    return read_image_folder(Path(root) / sub, gray=True, size=48, strict=strict, name=f"fer2013/{sub}")


# -- RAF-DB ------------------------------------------------------------------------------------------------------

def read_rafdb(root, split: str = "train", strict=False, size: int | None = None) -> ImageDataset:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``; labels 1-7) and
    ``Image/aligned/train_00001_aligned.jpg`` (100x100 RGB)."""
    root = Path(root)
    listing = root / "EmoLabel" / "list_patition_label.txt"
    if not listing.exists():
        raise DatasetError(f"{listing}: not found (expected RAF-DB basic's layout)")
    target = _present(RAFDB.names)
    remap = [target.names.index(n) for n in RAFDB.names]
    items, errors = [], []
    for lineno, line in enumerate(listing.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{listing}:{lineno}"
        if len(parts) != 2 or not parts[1].isdigit():
            errors.append((where, f"expected 'name label', got {line!r}"))
            continue
        fname, lab = parts[0], int(parts[1])
        if not fname.startswith(split + "_"):
            continue
        img = root / "Image" / "aligned" / (Path(fname).stem + "_aligned.jpg")
        if not 1 <= lab <= 7:
            if strict:
                raise DatasetError(f"{img}: label {lab} out of range 1..7 ({where})")
            errors.append((str(img), f"label {lab} out of range 1..7 ({where})"))
            continue
        items.append((str(img), remap[lab - 1]))
    return build_dataset(items, target, gray=False, size=size, name=f"rafdb/{split}", strict=strict, errors=errors)


# -- AffectNet ---------------------------------------------------------------------------------------------------

AFFECTNET_CSV = {"train": "training.csv", "val": "validation.csv", "valid": "validation.csv"}


def read_affectnet(root, split: str = "val", classes: int = 8, strict=False, size: int = 112) -> ImageDataset:
    """AffectNet's CSV layout: ``training.csv`` / ``validation.csv`` with ``subDirectory_filePath`` and
    ``expression`` (0-7 emotions in AffectNet's order; 8 None, 9 Uncertain, 10 No-Face are dropped by protocol),
    images under ``Manually_Annotated_Images/``, resized to ``size``. ``classes=7`` also drops contempt."""
    if classes not in (7, 8):
        raise ValueError("classes must be 7 or 8")
    root = Path(root)
    csv_path = root / AFFECTNET_CSV.get(split, split)
    if not csv_path.exists():
        raise DatasetError(f"{csv_path}: not found (expected AffectNet's training.csv / validation.csv)")
    source = AFFECTNET8 if classes == 8 else AFFECTNET7
    target = _present(source.names)
    items, errors, dropped = [], [], {"non_emotion": 0, "contempt": 0}
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"subDirectory_filePath", "expression"} <= set(reader.fieldnames or ()):
            raise DatasetError(f"{csv_path}: expected columns subDirectory_filePath, expression; got {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            img = root / "Manually_Annotated_Images" / row["subDirectory_filePath"]
            try:
                lab = int(row["expression"])
            except ValueError:
                errors.append((str(img), f"expression {row['expression']!r} is not an integer ({csv_path}:{lineno})"))
                continue
            if lab in (8, 9, 10):
                dropped["non_emotion"] += 1
                continue
            if lab == 7 and classes == 7:
                dropped["contempt"] += 1
                continue
            if not 0 <= lab <= 7:
                if strict:
                    raise DatasetError(f"{img}: expression {lab} out of range 0..10")
                errors.append((str(img), f"expression {lab} out of range 0..10 ({csv_path}:{lineno})"))
                continue
            items.append((str(img), target.names.index(AFFECTNET8.names[lab])))
    return build_dataset(items, target, gray=False, size=size, name=f"affectnet{classes}/{split}", strict=strict,
                         errors=errors, dropped=dropped)


KINDS = ("ferplus", "fer2013", "rafdb", "affectnet", "affectnet7", "affectnet8", "folder")


# -- by name -----------------------------------------------------------------------------------------------------

def read_dataset(kind: str, root=None, split: str | None = None, protocol: str = "majority", **kw) -> ImageDataset:
    """One entry point: ``kind`` in ferplus, fer2013 (folders or a .csv path), rafdb, affectnet, affectnet7,
    folder (``root`` is the folder whose subfolders are the classes; ``split`` is not needed). ``root`` defaults to
    the kind's folder under ``FER_DATA``; a missing one raises :class:`~fer_core.data.root.DataNotFound`, which
    says what to download and from where."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; known: {', '.join(KINDS)}")
    root = require(kind, root if root is not None and str(root) else dataset_root(kind))
    if kind == "ferplus":
        return read_ferplus(root, split or "train", protocol, **kw)
    if kind == "fer2013":
        if str(root).endswith(".csv"):
            return read_fer2013_csv(root, split or "train", **kw)
        return read_fer2013_folders(root, split or "train", **kw)
    if kind == "rafdb":
        return read_rafdb(root, split or "train", **kw)
    if kind in ("affectnet", "affectnet8", "affectnet7"):
        return read_affectnet(root, split or "val", classes=7 if kind == "affectnet7" else 8, **kw)
    return read_image_folder(Path(root) / split if split else root, **kw)
