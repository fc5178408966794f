"""The command line: the faces of images, folders and videos, read by the three models.

    fer-predict photo.jpg [more.jpg folder/ clip.mp4] [--json out.json] [--csv out.csv] [--every 10]
    python -m fer_core.predict ...           # the same

Images and folders give one JSON record per image; a video gives one record per n-th frame (``--every``), and
``--csv`` writes one row per face, model and frame. Models default to the shipped weights (``ddamfn``,
``resnet_dda``, ``fusion``); ``--weights key=PATH`` points a key elsewhere. Records are written as they are made
(:class:`fer_core.records.RecordWriter`); an input that cannot be read is reported by name, the rest is written,
and the exit status is 1.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from ..images import ImageInputError
from ..records import RecordWriter
from ..results import display_name
from .analyzer import MODEL_KEYS, Analyzer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def inputs(paths) -> list[Path]:
    """The files to read: each path given, a folder's images and videos (sorted, recursively)."""
    from ..video import VIDEO_SUFFIXES

    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [q for q in sorted(p.rglob("*")) if q.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES]
        else:
            out.append(p)
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fer-predict",
                                 description="Facial expressions of the faces in images, folders and videos.")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--json", default=None, help="write every record here, as it is made (a JSON array)")
    ap.add_argument("--csv", default=None, help="one row per face and model (and frame): top, confidence, each class")
    ap.add_argument("--every", type=int, default=5, help="videos: analyse every n-th frame (faces are tracked)")
    ap.add_argument("--maps", action="store_true",
                    help="images: also Grad-CAM and own attention, written as PNGs beside the JSON (slower)")
    ap.add_argument("--balanced", action="store_true", help="the balanced reading (rare classes named more often)")
    ap.add_argument("--whole-image", action="store_true", help="no face found: use the whole image")
    ap.add_argument("--detector", default="auto", choices=("auto", "yunet", "haar"))
    ap.add_argument("--weights", action="append", default=[], help="KEY=NAME_OR_PATH, e.g. ddamfn=runs/x/export")
    ap.add_argument("--models", default=",".join(MODEL_KEYS))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("FER_THREADS", "2")))
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (auto: FER_DEVICE, else CUDA if any)")
    return ap


def weight_names(a) -> dict:
    """``{key: name or path}`` from ``--models`` and ``--weights``."""
    names = {k: k for k in a.models.split(",")}
    names.update(dict(kv.split("=", 1) for kv in a.weights))
    return names


def maps_folder(a) -> Path | None:
    """Where ``--maps`` writes its PNGs: beside the JSON (its name without the suffix), else ``maps/``."""
    if not a.maps:
        return None
    return Path(a.json).with_suffix("") if a.json else Path("maps")


def read_file(analyzer: Analyzer, path: Path, a, setting: str, progress=None):
    """The records of one input (an image: one; a video: one per analysed frame), each with its analysis where
    there are maps to write; raises :class:`ImageInputError` for an input that cannot be read."""
    from ..video import VIDEO_SUFFIXES, analyze_video

    if path.suffix.lower() in VIDEO_SUFFIXES:
        for rec in analyze_video(analyzer, path, a.every, setting, progress=progress):
            if "error" in rec:
                print(f"{path} frame {rec['frame']}: {rec['error']}", file=sys.stderr)
            yield {"file": str(path), **rec}, None
    else:
        analysis = analyzer.analyze(path, maps=a.maps, whole_image_if_none=a.whole_image, setting=setting)
        yield {"file": str(path), "frame": None, **analysis.to_json()}, analysis


def main(argv=None) -> int:
    from tqdm.auto import tqdm

    from ..video import VIDEO_SUFFIXES, probe

    a = parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    analyzer = Analyzer.from_pretrained(weight_names(a), detector=a.detector, device=a.device)
    setting = "balanced" if a.balanced else "accurate"
    files, failed = inputs(a.paths), 0
    with RecordWriter(analyzer.labels, json_out=a.json, csv_out=a.csv, maps_dir=maps_folder(a)) as out:
        for path in tqdm(files, desc="files", unit="file", disable=len(files) < 2):
            bar = None
            try:
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    info = probe(path)
                    bar = tqdm(total=(info.frames + a.every - 1) // a.every if info.frames else None,
                               desc=path.name, unit="frame")
                for rec, analysis in read_file(analyzer, path, a, setting, bar and (lambda d, t: bar.update(1))):
                    rec = out.add(rec, analysis)
                    if len(files) == 1 and analysis is not None:
                        print_record(rec)
            except ImageInputError as e:
                failed += 1
                out.add({"file": str(path), "error": str(e)})
                print(f"{path}: {e}", file=sys.stderr)
            finally:
                if bar is not None:
                    bar.close()
    return 1 if failed else 0


def print_record(rec: dict) -> None:
    for f in rec.get("faces", []):
        print(f"face {f['index']} {f['box']}: " + ", ".join(
            f"{display_name(k)} {m['top']} ({m['confidence']:.2f})" for k, m in f["models"].items())
            + f" | {f['agreement']['text']}" + (f" | uncertain: {'; '.join(f['doubts'])}" if f["doubts"] else ""))
    for n in rec.get("notes", []):
        print("note:", n)
