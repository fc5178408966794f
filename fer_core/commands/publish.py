"""Publish the shipped models and the demo Space to the Hugging Face Hub, with huggingface_hub's upload API (large
files go to the Hub's large-file storage whatever this repository's git history holds).

    python train_scripts/publish.py --org my-lab --dry-run          # every file, its size and where it goes
    python train_scripts/publish.py --org my-lab                    # the three model repos, then the Space
    python train_scripts/publish.py --org my-lab --models ddamfn    # one model repo, no Space
    python train_scripts/publish.py --org my-lab --space-weights hub --hardware zero-a10g

Each model repo (``ORG/ddamfn-ferplus`` ...) gets ``model.safetensors``, ``config.json``, its model card
``README.md`` and the card's pictures, from ``weights/``; only folders that match their pins in
``fer_core/pretrained.py`` are published (what ``load_pretrained`` will accept), and the pinned revision is
created as a tag on the new commit, whose id is printed: pin it as the revision for good. The Space
(``ORG/SPACE``) gets the app (``app.py``, ``demo/``, ``fer_core/``), ``requirements.txt`` with ``spaces`` added, a
README whose front matter configures it, and the weights: a copy of ``weights/`` (``--space-weights copy``, the
default: the app starts with no download), or none and a ``preload_from_hub`` entry per model repo, fetched when
the Space is built (``--space-weights hub``). ``--org`` (or ``FER_HUB_ORG``) must be an organisation or user
that the token's owner can write to.
"""
from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from fer_core.card import render_model_card
from fer_core.files import project_root
from fer_core.pretrained import PRETRAINED, hub_org
from fer_core.sources import pin_mismatch
from fer_core.weights import CONFIG_FILE, load_weights, read_config

ROOT = project_root()

MODEL_FILES = (".safetensors", ".json", ".md", ".png")
SPACE_CODE = ("app.py", "demo", "fer_core")  # what the app imports, and nothing else (no tests, no training data)
SPACE_SKIP = ("__pycache__", ".pyc")
SPACES_PIN = "spaces==0.51.3"  # the ZeroGPU helper, only imported on a ZeroGPU Space
HARDWARE = ("zero-a10g", "cpu-basic", "cpu-upgrade", "t4-small", "l4x1", "a10g-small")


@dataclass
class Upload:
    repo_id: str
    repo_type: str  # model or space
    path_in_repo: str
    local: Path | None  # None: generated content
    data: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.local.stat().st_size


def model_uploads(key: str, weights_dir: Path, org: str) -> tuple[list[Upload], str]:
    entry = PRETRAINED[key]
    folder = weights_dir / entry.local_dir
    load_weights(folder)  # a broken folder is refused before anything is sent
    bad = pin_mismatch(entry, folder)
    if bad:
        raise SystemExit(f"{key}: {bad}; publish only pinned weights (python train_scripts/pin.py first)")
    refs = read_config(folder / CONFIG_FILE).get("branch_refs") or {}
    paths = [r["weights"] for r in refs.values() if r["weights"] not in PRETRAINED]
    if paths:
        raise SystemExit(f"{key}: its branches are referenced by path ({paths}), which a Hub snapshot does not "
                         "hold: export it with --branch-refs branch_a=ddamfn,branch_b=resnet_dda")
    repo = f"{org}/{entry.repo_name}"
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_FILES)
    ups = [Upload(repo, "model", p.name, p) for p in files]
    if not (folder / "README.md").exists():
        ups.append(Upload(repo, "model", "README.md", None,
                          render_model_card(read_config(folder / CONFIG_FILE), repo).encode()))
    return ups, entry.revision


def space_readme(org: str, models: list[str], hardware: str, space_weights: str, python: str) -> bytes:
    """The Space's README: the project README's front matter, completed, and a short page."""
    text = (ROOT / "README.md").read_text()
    front = text.split("---", 2)[1].strip().splitlines() if text.startswith("---") else []
    front = [line for line in front if not line.startswith(("python_version:", "suggested_hardware:"))]
    front += [f'python_version: "{python}"', f"suggested_hardware: {hardware}", "models:"]
    front += [f"  - {org}/{PRETRAINED[k].repo_name}" for k in models]
    if space_weights == "hub":
        front.append("preload_from_hub:")
        front += [f"  - {org}/{PRETRAINED[k].repo_name} config.json,model.safetensors {PRETRAINED[k].revision}"
                  for k in models]
    body = ["# Facial expressions, read by three attention models", "",
            "DDAMFN, ResNet18+DDA and their attention fusion read every face of a photo or a webcam, each with its "
            "Grad-CAM and its own attention map. Trained from scratch on FER+ on a 2-core CPU; the model cards:", ""]
    body += [f"- [{PRETRAINED[k].title or k}](https://huggingface.co/{org}/{PRETRAINED[k].repo_name})" for k in models]
    if hardware.startswith("zero"):
        body += ["", "On ZeroGPU a photo is read on a GPU lent for the call; the live webcam is read on the Space's "
                     "CPU, so that your daily GPU quota is not spent on video frames."]
    return ("---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body) + "\n").encode()


def space_uploads(org: str, space: str, models: list[str], weights_dir: Path, space_weights: str, hardware: str,
                  python: str) -> list[Upload]:
    repo = f"{org}/{space}"
    ups = []
    for item in SPACE_CODE:
        path = ROOT / item
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in files:
            if not any(s in p.as_posix() for s in SPACE_SKIP):
                ups.append(Upload(repo, "space", p.relative_to(ROOT).as_posix(), p))
    reqs = ((ROOT / "requirements.txt").read_text().rstrip()
            + f"\n# ZeroGPU (demo/runner.py imports it only there)\n{SPACES_PIN}\n")
    ups.append(Upload(repo, "space", "requirements.txt", None, reqs.encode()))
    ups.append(Upload(repo, "space", "README.md", None, space_readme(org, models, hardware, space_weights, python)))
    keep = ["yunet"] + ([PRETRAINED[k].local_dir for k in models] if space_weights == "copy" else [])
    for name in keep:
        for p in sorted((weights_dir / name).iterdir()):
            if p.is_file():
                ups.append(Upload(repo, "space", f"weights/{name}/{p.name}", p))
    return ups


def push(api, ups: list[Upload], repo_id: str, repo_type: str, message: str):
    """One commit of every upload for ``repo_id`` (the API stores large files the way the Hub wants)."""
    from huggingface_hub import CommitOperationAdd

    ops = [CommitOperationAdd(u.path_in_repo, u.data if u.data is not None else str(u.local))
           for u in ups if u.repo_id == repo_id]
    return api.create_commit(repo_id, ops, commit_message=message, repo_type=repo_type)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--org", default=None, help="organisation or user to publish under (default: FER_HUB_ORG)")
    ap.add_argument("--models", default="ddamfn,resnet_dda,fusion")
    ap.add_argument("--weights-dir", type=Path, default=ROOT / "weights")
    ap.add_argument("--space", default="fer-attention-demo", help="the Space's name ('' for none)")
    ap.add_argument("--space-weights", choices=("copy", "hub"), default="copy")
    ap.add_argument("--hardware", choices=HARDWARE, default="zero-a10g", help="the Space's suggested hardware")
    ap.add_argument("--python", default="3.10", help="the Space's Python (ZeroGPU documents 3.10)")
    ap.add_argument("--private", action="store_true")
    ap.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    ap.add_argument("--dry-run", action="store_true", help="list every file, its size and its destination")
    a = ap.parse_args(argv)
    settings = {}
    if a.org:
        settings["FER_HUB_ORG"] = a.org  # the registry's repo ids follow it
    if a.weights_dir.resolve() != (ROOT / "weights").resolve():
        settings["FER_WEIGHTS_DIR"] = str(a.weights_dir)  # a fusion's branches are found beside it
    with _environ(settings):
        return publish(a, ap)


@contextlib.contextmanager
def _environ(settings: dict):
    """The environment with ``settings``, as it was afterwards."""
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def publish(a, ap) -> int:
    org = hub_org()
    models = [k for k in a.models.split(",") if k]
    unknown = [k for k in models if k not in PRETRAINED]
    if unknown:
        ap.error(f"unknown models {unknown}; registered: {sorted(PRETRAINED)}")
    ups, tags = [], {}
    for key in models:
        got, tag = model_uploads(key, a.weights_dir, org)
        tags[f"{org}/{PRETRAINED[key].repo_name}"] = (PRETRAINED[key].name, tag)
        ups += got
    if a.space:
        ups += space_uploads(org, a.space, models, a.weights_dir, a.space_weights, a.hardware, a.python)
    for u in ups:
        print(f"{u.repo_type:5s} {u.repo_id}/{u.path_in_repo}  {u.size:,d} bytes")
    print(f"{len(ups)} files, {sum(u.size for u in ups) / 1e6:.1f} MB in all")
    if a.dry_run:
        print("dry run: nothing uploaded")
        return 0
    from huggingface_hub import HfApi

    api = HfApi(endpoint=a.endpoint)
    for repo_id, (name, tag) in tags.items():
        api.create_repo(repo_id, private=a.private, exist_ok=True)
        info = push(api, ups, repo_id, "model", "Publish the weights, config and model card")
        api.create_tag(repo_id, tag=tag, revision=info.oid, exist_ok=True)
        print(f"{repo_id}: commit {info.oid}, tagged {tag} "
              f"(pin it: python train_scripts/pin.py --revision {name}={info.oid})")
    if a.space:
        repo_id = f"{org}/{a.space}"
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=a.private, exist_ok=True)
        info = push(api, ups, repo_id, "space", "Publish the demo")
        # the app finds the model repos of this organisation (a Space built with --space-weights hub reads them
        # from the cache preload_from_hub filled)
        api.add_space_variable(repo_id, "FER_HUB_ORG", org)
        print(f"{repo_id}: commit {info.oid}; variable FER_HUB_ORG={org}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
