"""The one writer of results, for the CLI, the cluster path and the page's downloads: records (plain-JSON dicts, one
per image or analysed video frame, as :meth:`fer_core.results.Analysis.to_json` and
:func:`fer_core.video.analyze_video` make them, with the ``file`` they came from) written as they arrive.

* JSON: an array, valid once the writer is closed (``[`` first, one record per element);
* JSON Lines: one record per line, valid after every record;
* CSV: one row per face, model and frame (``CSV_HEADER``, then each class's probability);
* with ``maps_dir``: each face's Grad-CAM and own-attention maps as 8-bit PNGs, their paths in the record (from an
  :class:`~fer_core.results.Analysis`, or from the PNG bytes a cluster worker made of one: :func:`map_pngs`).

Each output is a path or an open text stream (the page writes into memory)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

CSV_HEADER = ["file", "frame", "time_s", "face", "model", "top", "confidence", "uncertain"]


def csv_rows(record: dict, labels) -> list[list]:
    """One CSV row per face and model of a record (``CSV_HEADER`` then each label's probability); a face's number
    is its track where a video's tracker gave one."""
    out = []
    for face in record.get("faces", []):
        for key, m in face["models"].items():
            out.append([record.get("file", ""), record.get("frame"), record.get("time_s"),
                        face.get("track", face["index"]), key, m["top"], m["confidence"], m.get("uncertain", False)]
                       + [m["probs"].get(c, 0.0) for c in labels])
    return out


class RecordWriter:
    """Writes each record as it arrives to every output asked for, flushing after each: what was written survives
    a crash (the JSON array then lacks only its closing bracket; JSON Lines and CSV stay whole)."""

    def __init__(self, labels, *, json_out=None, jsonl_out=None, csv_out=None, maps_dir=None, indent=None):
        self.labels, self.maps_dir, self.indent, self.count = list(labels), maps_dir, indent, 0
        self._owned = []
        self.json, self.jsonl, csv_file = (self._open(x) for x in (json_out, jsonl_out, csv_out))
        if self.json:
            self.json.write("[\n")
        self.csv = csv.writer(csv_file) if csv_file else None
        self._csv_file = csv_file
        if self.csv:
            self.csv.writerow(CSV_HEADER + self.labels)
        if maps_dir is not None:
            Path(maps_dir).mkdir(parents=True, exist_ok=True)

    def _open(self, out):
        if out is None or hasattr(out, "write"):
            return out
        f = open(out, "w", newline="")
        self._owned.append(f)
        return f

    def add(self, record: dict, analysis=None, pngs: dict | None = None) -> dict:
        """Write one record (with its maps as PNGs when the writer has a ``maps_dir``: ``analysis``'s, or ``pngs``
        as :func:`map_pngs` made them elsewhere); returns the record as written."""
        if analysis is not None and pngs is None:
            pngs = map_pngs(analysis) if self.maps_dir is not None else None
        if pngs is not None and self.maps_dir is not None:
            record = dict(record, maps=write_maps(record, pngs, Path(self.maps_dir)))
        if self.json:
            self.json.write((",\n" if self.count else "") + json.dumps(record, indent=self.indent))
        if self.jsonl:
            self.jsonl.write(json.dumps(record) + "\n")
        if self.csv:
            self.csv.writerows(csv_rows(record, self.labels))
        for f in (self.json, self.jsonl, self._csv_file):
            if f:
                f.flush()
        self.count += 1
        return record

    def close(self) -> None:
        if self.json:
            self.json.write("\n]\n")
        for f in self._owned:
            f.close()
        self._owned = []
        self.json = self.jsonl = self.csv = self._csv_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def records_text(records, labels, indent: int | None = 1) -> tuple[str, str]:
    """Records as the texts of a JSON file and a CSV file (the page's downloads)."""
    j, c = io.StringIO(), io.StringIO()
    with RecordWriter(labels, json_out=j, csv_out=c, indent=indent) as out:
        for r in records:
            out.add(r)
    return j.getvalue(), c.getvalue()


def map_pngs(analysis) -> dict[str, bytes]:
    """Each face's Grad-CAM and own-attention maps as 8-bit grayscale PNG files' bytes, by
    ``face<N>/<model>/<kind>`` (what a cluster worker sends back for the writer to store)."""
    import cv2

    out = {}
    for face in analysis.faces:
        for key, m in face.models.items():
            for kind in ("gradcam", "attention"):
                heat = getattr(m, kind)
                if heat is None:
                    continue
                ok, buf = cv2.imencode(".png", np.uint8(np.round(heat * 255)))
                if not ok:
                    raise ValueError(f"could not encode face {face.index}'s {key} {kind} map")
                out[f"face{face.index}/{key}/{kind}"] = buf.tobytes()
    return out


def write_maps(record: dict, pngs: dict[str, bytes], folder: Path) -> dict:
    """The PNGs of :func:`map_pngs` in ``folder``, named after the record's file (and frame); their paths by
    ``face<N>/<model>/<kind>``."""
    stem = Path(record["file"]).stem + (f"_f{record['frame']}" if record.get("frame") is not None else "")
    out = {}
    for name, data in pngs.items():
        path = folder / f"{stem}_{name.replace('/', '_')}.png"
        path.write_bytes(data)
        out[name] = str(path)
    return out
