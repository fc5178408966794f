"""Write tests/golden.json: what the shipped weights read on a few fixed inputs (the first FER+ valid image of each
class, and the two example photos through the whole page path), for tests/test_served.py. Run it again, and
commit the file, whenever the shipped weights change on purpose:

    python tests/make_golden.py
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from fer_core.data import dataset_root

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLDEN = HERE / "golden.json"
FERPLUS_VALID = dataset_root("ferplus") / "FER2013Valid"  # $FER_DATA/ferplus (docs/training.md, "Get the data")
PHOTOS = [ROOT / "demo" / "examples" / "grace_hopper.jpg", ROOT / "demo" / "examples" / "astronaut.png"]


def golden_crops() -> list[str]:
    """The first FER+ valid image (majority label, in file order) of each class."""
    from fer_core.data import read_dataset

    ds = read_dataset("ferplus", FERPLUS_VALID.parent, "valid")
    first = {}
    for path, label in zip(ds.paths, ds.labels):
        first.setdefault(int(label), os.path.basename(path))
    return [first[k] for k in sorted(first)]


def read_crops(names) -> list:
    import cv2

    return [cv2.imread(str(FERPLUS_VALID / n), cv2.IMREAD_GRAYSCALE) for n in names]


def readings(analyzer) -> dict:
    names = golden_crops()
    out = {"crops": {}, "photos": {}}
    for name, models in zip(names, analyzer.read(read_crops(names))):
        out["crops"][name] = {k: m.probs for k, m in models.items()}
    for photo in PHOTOS:
        a = analyzer.analyze(photo)
        out["photos"][photo.name] = [{k: m.probs for k, m in f.models.items()} for f in a.faces]
    return out


def main():
    from fer_core.predict import Analyzer
    from fer_core.pretrained import PRETRAINED

    os.environ["FER_WEIGHTS_SOURCE"] = "local"
    analyzer = Analyzer.from_pretrained(detector="yunet")
    data = {"weights": {k: PRETRAINED[k].sha256 for k in analyzer.shown}, **readings(analyzer)}
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
