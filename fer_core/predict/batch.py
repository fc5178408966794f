"""A batch of inputs, the same in one process and on a cluster: which files a list of paths names, what each file
yields (an image: one record; a video: one per analysed frame) and the tally of what was read and what failed.

The command line (:mod:`.cli`) reads the files one after the other; the cluster path (:mod:`.cluster`) hands each
to a worker (:mod:`.worker`) that reads it with the same :func:`read_input`, so the records are the same.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..results import display_name

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


def is_video(path) -> bool:
    from ..video import VIDEO_SUFFIXES

    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class ReadOptions:
    """How every input is read: ``every`` n-th frame of a video, ``maps`` of images, ``whole_image`` where no face
    is found, ``setting`` (``accurate`` or ``balanced``). Videos are read whole (the page's length limits are the
    page's: :mod:`fer_core.video`)."""

    every: int = 5
    maps: bool = False
    whole_image: bool = False
    setting: str = "accurate"

    @classmethod
    def from_args(cls, a) -> ReadOptions:
        return cls(a.every, a.maps, a.whole_image, "balanced" if a.balanced else "accurate")


def read_input(analyzer, path: Path, opts: ReadOptions, name: str | None = None, progress=None):
    """``(record, analysis or None)`` of one input (an image: one, with its analysis for the maps; a video: one
    per analysed frame, without maps), each record naming the file ``name`` (default: ``path``); raises
    :class:`~fer_core.images.ImageInputError` for an input that cannot be read."""
    from ..video import analyze_video

    name = str(path) if name is None else name
    if is_video(path):
        for rec in analyze_video(analyzer, path, opts.every, opts.setting, progress=progress, limits=False):
            yield {"file": name, **rec}, None
    else:
        analysis = analyzer.analyze(path, maps=opts.maps, whole_image_if_none=opts.whole_image, setting=opts.setting)
        yield {"file": name, "frame": None, **analysis.to_json()}, analysis


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


def failure(name: str, error) -> dict:
    """The record of an input that could not be read: its error without the file's name, which the record holds
    (a missing file's error names it, so that a message is whole where no record carries it)."""
    text, named = str(error), f"{Path(name).name}: "
    return {"file": name, "error": text[len(named):] if text.startswith(named) else text}


class Tally:
    """What a batch read: files, images, videos, analysed frames, faces, and each failure by name, reported on
    stderr as it comes (an unreadable file, an undecodable frame) and summed up at the end."""

    def __init__(self, total: int):
        self.total, self.images, self.videos, self.frames, self.bad_frames, self.faces = total, 0, 0, 0, 0, 0
        self.failed: list[str] = []
        self.current = None  # the input of the last record

    def add(self, index: int, record: dict) -> bool:
        """Count one record of input ``index`` (records arrive in input order); True when it is the input's first."""
        new = index != self.current
        self.current = index
        if "error" in record and "frame" not in record:
            self.failed.append(record["file"])
            print(f"{record['file']}: {record['error']}", file=sys.stderr)
            return new
        if record.get("frame") is None:
            self.images += 1
        else:
            self.videos += new
            self.frames += 1
            if "error" in record:
                self.bad_frames += 1
                print(f"{record['file']} frame {record['frame']}: {record['error']}", file=sys.stderr)
        self.faces += len(record.get("faces", []))
        return new

    @property
    def read(self) -> int:
        return self.images + self.videos

    def summary(self, seconds: float, where: str = "") -> str:
        parts = [f"{self.images} image{'s' * (self.images != 1)}"]
        if self.videos:
            parts.append(f"{self.videos} video{'s' * (self.videos != 1)} ({self.frames} frames analysed"
                         + (f", {self.bad_frames} undecodable" if self.bad_frames else "") + ")")
        text = (f"read {self.read} of {self.total} files: {', '.join(parts)}; {self.faces} faces; "
                f"{seconds:.1f} s{where}")
        if self.failed:
            text += f"; {len(self.failed)} failed: " + ", ".join(self.failed)
        return text


def print_record(rec: dict) -> None:
    """One image's faces, a line each, on stdout (the command line, when it reads a single image)."""
    for f in rec.get("faces", []):
        print(f"face {f['index']} {f['box']}: " + ", ".join(
            f"{display_name(k)} {m['top']} ({m['confidence']:.2f})" for k, m in f["models"].items())
            + f" | {f['agreement']['text']}" + (f" | uncertain: {'; '.join(f['doubts'])}" if f["doubts"] else ""))
    for n in rec.get("notes", []):
        print("note:", n)
