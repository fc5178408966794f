"""FER+ and FER2013 laid out from their official files, the way the FER+ project lays them out.

    fer-data layout --fer2013-csv fer2013.csv --ferplus FERPlus      # writes $FER_DATA/ferplus and $FER_DATA/fer2013

Inputs: ``fer2013.csv`` (Kaggle's "Challenges in Representation Learning: Facial Expression Recognition Challenge":
``emotion,pixels,Usage``, 35,887 rows) and a copy of github.com/microsoft/FERPlus (``fer2013new.csv``: one row per
row of fer2013.csv, in the same order, with its ``Usage`` and ``Image name``; ``data/FER2013*/label.csv``: the votes
FER+'s own trainer reads). As FER+'s ``src/generate_training_data.py`` does, row *i* of fer2013.csv becomes a 48x48
PNG named by row *i* of fer2013new.csv (``fer0000000.png`` ...; the names drift from the row numbers after a few
dozen rows, so they are read, never computed), in ``FER2013Train/``, ``FER2013Valid/`` or ``FER2013Test/`` by its
Usage (Training, PublicTest, PrivateTest); a row with no name (not a face) is skipped, and where a name repeats
the later row's image is the one kept. Each folder's ``label.csv`` is the FER+ repository's own (headerless:
file name, ``"(0, 0, 48, 48)"``, ten vote counts for neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt, unknown, NF); its votes differ from fer2013new.csv's vote columns for about one image in twenty, and
FER+'s trainer reads label.csv. Beside it, ``fer2013/{train,val,test}/<class>/`` holds the same images under the
same names with FER2013's own seven labels (``angry disgust fear happy sad surprise neutral``).

Nothing is downloaded here; the two sources keep their own terms (FER2013: research use; FER+ labels: MIT).
"""
from __future__ import annotations

import csv
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .root import FERPLUS_REPO, DataNotFound, DatasetError, data_root, missing_message

FERPLUS_FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
FER2013_FOLDERS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # the emotion column, 0-6


@dataclass
class Layout:
    """What :func:`write_layout` wrote: images per FER+ folder, the rows skipped, the repeated names."""
    root: Path
    images: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # rows of fer2013.csv without a FER+ name (not faces)
    repeated: list[str] = field(default_factory=list)  # names given to two rows: the later row's image is kept

    def report(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.images.items())
        return (f"wrote {self.root / 'ferplus'} and {self.root / 'fer2013'}: {counts} images; {self.skipped} rows "
                f"without a FER+ name skipped; {len(self.repeated)} names given to two rows (the later kept)")


def ferplus_files(ferplus) -> tuple[Path, Path]:
    """``(fer2013new.csv, data/)`` of a FER+ copy: the repository's folder, or its fer2013new.csv (data/ beside)."""
    ferplus = Path(ferplus).expanduser()
    new_csv = ferplus if ferplus.suffix == ".csv" else ferplus / "fer2013new.csv"
    labels = new_csv.parent / "data"
    for need in (new_csv, *(labels / f / "label.csv" for f in FERPLUS_FOLDERS.values())):
        if not need.exists():
            raise DataNotFound(f"{need}: not found; --ferplus must be a copy of {FERPLUS_REPO} (git clone "
                               f"{FERPLUS_REPO}), which holds fer2013new.csv and data/FER2013*/label.csv.\n"
                               + missing_message("ferplus", ferplus).split("\n", 1)[1])
    return new_csv, labels


def read_names(new_csv: Path) -> list[tuple[str, str]]:
    """``(Usage, Image name)`` of each row of fer2013new.csv, the name '' where FER+ gives none."""
    with open(new_csv, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        if header[:2] != ["Usage", "Image name"]:
            raise DatasetError(f"{new_csv}: expected the columns Usage,Image name,...; got {header[:3]} (an older "
                               f"fer2013new.csv without names? take the current one from {FERPLUS_REPO})")
        return [(r[0], r[1].strip()) for r in rows if r]


def fer2013_rows(fer2013_csv: Path):
    """``(row number, emotion, pixels text, Usage)`` of each row of Kaggle's fer2013.csv (or of its
    icml_face_data.csv: the same rows, the columns in another order)."""
    with open(fer2013_csv, newline="") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [c.strip() for c in reader.fieldnames or ()]  # icml_face_data.csv: "emotion, Usage, pixels"
        if not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames):
            raise DatasetError(f"{fer2013_csv}: expected the columns emotion,pixels,Usage of the challenge's "
                               f"fer2013.csv; got {reader.fieldnames}")
        for i, row in enumerate(reader):
            yield i, row["emotion"], row["pixels"], row["Usage"]


def pixels(text: str, where: str) -> np.ndarray:
    """A 48x48 uint8 image from fer2013.csv's space-separated pixels."""
    try:
        px = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise DatasetError(f"{where}: pixels are not integers") from None
    if px.size != 48 * 48 or px.min() < 0 or px.max() > 255:
        raise DatasetError(f"{where}: expected 2304 pixel values in 0..255, got {px.size}")
    return px.astype(np.uint8).reshape(48, 48)


def write_layout(fer2013_csv, ferplus, out=None, *, overwrite: bool = False, progress: bool = True) -> Layout:
    """Write ``out/ferplus/`` and ``out/fer2013/`` (``out`` defaults to ``FER_DATA``) from fer2013.csv and a FER+
    copy; each folder is written beside its final place and moved there once whole."""
    fer2013_csv = Path(fer2013_csv).expanduser()
    if not fer2013_csv.exists():
        raise DataNotFound(missing_message("ferplus", fer2013_csv, "fer2013.csv"))
    new_csv, labels = ferplus_files(ferplus)
    names = read_names(new_csv)
    out = Path(out).expanduser() if out else data_root()
    final = {k: out / k for k in ("ferplus", "fer2013")}
    for path in final.values():
        if path.exists() and not overwrite:
            raise DatasetError(f"{path} exists: remove it first, or pass --overwrite")
    tmp = {k: out / f".{k}.partial" for k in final}
    for path in tmp.values():
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    try:
        layout = _write_images(fer2013_csv, new_csv, names, tmp, out, progress)
        for folder in FERPLUS_FOLDERS.values():
            _copy_labels(labels / folder / "label.csv", tmp["ferplus"] / folder)
        for k, path in final.items():
            if path.exists():
                shutil.rmtree(path)
            tmp[k].rename(path)
    finally:
        for path in tmp.values():
            shutil.rmtree(path, ignore_errors=True)
    return layout


def _write_images(fer2013_csv, new_csv, names, tmp, out, progress) -> Layout:
    last = {}  # (Usage, name) -> the last row that names it: its image is kept, as generate_training_data.py's is
    for i, (usage, name) in enumerate(names):
        if name:
            last[(usage, name)] = i
    layout = Layout(out, images={v: 0 for v in FERPLUS_FOLDERS.values()})
    seen = {}
    rows = 0
    for i, emotion, text, usage in fer2013_rows(fer2013_csv):
        rows = i + 1
        if i >= len(names):
            break
        own_usage, name = names[i]
        if usage not in FERPLUS_FOLDERS:
            raise DatasetError(f"{fer2013_csv} row {i + 2}: Usage {usage!r} is not one of {sorted(FERPLUS_FOLDERS)}")
        if own_usage != usage:
            raise DatasetError(f"{fer2013_csv} row {i + 2} is {usage}, {new_csv} row {i + 2} {own_usage}: the two "
                               f"files are not of the same release (fer2013.csv has 35,887 rows in the FER+ order)")
        if not name:
            layout.skipped += 1
            continue
        seen[(usage, name)] = seen.get((usage, name), 0) + 1
        if last[(usage, name)] != i:
            continue
        img = pixels(text, f"{fer2013_csv} row {i + 2}")
        cls = FER2013_CLASSES[int(emotion)] if emotion.strip().isdigit() and int(emotion) < 7 else None
        if cls is None:
            raise DatasetError(f"{fer2013_csv} row {i + 2}: emotion {emotion!r} is not 0-6")
        folder = FERPLUS_FOLDERS[usage]
        _write_png(tmp["ferplus"] / folder / name, img)
        _write_png(tmp["fer2013"] / FER2013_FOLDERS[usage] / cls / name, img)
        layout.images[folder] += 1
        if progress and sum(layout.images.values()) % 5000 == 0:
            print(f"  {sum(layout.images.values())} images", file=sys.stderr, flush=True)
    if rows != len(names):
        raise DatasetError(f"{fer2013_csv} has {rows} rows and {new_csv} {len(names)}: they must be the same "
                           f"release (the challenge's fer2013.csv, 35,887 rows)")
    layout.repeated = sorted(name for (_, name), n in seen.items() if n > 1)
    return layout


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: could not be written")


def _copy_labels(label_csv: Path, folder: Path) -> None:
    """FER+'s label.csv into ``folder``, once every image it names is there."""
    with open(label_csv, newline="") as f:
        missing = [r[0] for r in csv.reader(f) if r and r[0].strip() and not (folder / r[0]).exists()]
    if missing:
        raise DatasetError(f"{label_csv} names {len(missing)} images that fer2013.csv did not give, e.g. "
                           f"{missing[:3]}: are fer2013.csv and the FER+ copy whole and of the same release?")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(label_csv, folder / "label.csv")
