"""Analysed frames per second of a clip with one face, without maps, as the video tab and the CLI read it
(fer_core.video: decode, detect, track, the three models): ONNX Runtime against eager torch in the same run.

    python -m bench.video_throughput --json out.json [--frames 120] [--size 640x480]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fer_core.images import load_image
from fer_core.predict import MODEL_KEYS, Analyzer
from fer_core.video import analyze_video

ROOT = Path(__file__).resolve().parent.parent


def make_clip(path: Path, frames: int, size: tuple[int, int], fps: int = 30) -> Path:
    """One face (the Hopper photo) drifting slowly over a grey background, MJPG."""
    face = cv2.resize(load_image(ROOT / "demo/examples/grace_hopper.jpg"), (size[1] // 2, int(size[1] // 2 * 1.17)))
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        canvas = np.full((size[1], size[0], 3), 100, np.uint8)
        x = 40 + (i % 60)
        canvas[20:20 + face.shape[0], x:x + face.shape[1]] = face[:size[1] - 20]
        wr.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(ROOT / "weights"))
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    size = tuple(int(v) for v in a.size.split("x"))
    scratch = tempfile.TemporaryDirectory()  # the clip goes when the benchmark ends
    clip = make_clip(Path(scratch.name) / "clip.avi", a.frames, size)
    names = {k: Path(a.weights_dir) / k for k in MODEL_KEYS}
    res = {"date": time.strftime("%Y-%m-%d"), "threads": a.threads, "frames": a.frames, "size": a.size}
    for engine in ("torch", "onnx"):
        analyzer = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine=engine)
        list(analyze_video(analyzer, clip, every=30))  # warm-up
        t0 = time.perf_counter()
        records = list(analyze_video(analyzer, clip, every=1))
        seconds = time.perf_counter() - t0
        faces = sum(len(r.get("faces", [])) for r in records)
        res[engine] = {"frames_per_s": len(records) / seconds, "faces": faces,
                       "ms_per_frame_in_analyze": float(np.median([r["ms"] for r in records if "ms" in r]))}
        print(engine, {k: round(v, 2) if isinstance(v, float) else v for k, v in res[engine].items()}, flush=True)
    res["ratio"] = res["onnx"]["frames_per_s"] / res["torch"]["frames_per_s"]
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
