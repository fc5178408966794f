"""Publish the shipped models and the demo Space to the Hugging Face Hub, with huggingface_hub's upload API (large
files go to the Hub's large-file storage, Xet or LFS, whatever this repository's git history holds).

    python train_scripts/publish.py --org my-name --out space/   # write the Space as it would be uploaded: no network
    python train_scripts/publish.py --dry-run --org my-name       # every file, its size and where it goes
    python train_scripts/publish.py                               # the three model repos, then the Space, as you
    python train_scripts/publish.py --models ddamfn --space ''    # one model repo, no Space
    python train_scripts/publish.py --hardware cpu-basic --space-weights hub

The owner is ``--org``, else ``FER_HUB_ORG``, else the token's user: free ZeroGPU Spaces are for personal
accounts (an organisation needs a Team or Enterprise plan: docs/hosting.md).

Each model repo (``OWNER/ddamfn-ferplus`` ...) gets ``model.safetensors``, ``config.json``, its model card
``README.md`` and the card's pictures, from ``weights/``; only folders that match their pins in
``fer_core/pretrained.py`` are published (what ``load_pretrained`` will accept). The pinned revision's tag is put
on the new commit (moved there if it named another), and the commit is printed: pin it as the revision for good.
The Space (``OWNER/SPACE``, :mod:`fer_core.commands.space`) is written to a folder and that folder is uploaded
whole (files the folder does not hold are removed from the Space): the app, its requirements, the README that
configures it, and the weights: a copy of ``weights/`` (``--space-weights copy``, the default: the app starts with
no download), or ``preload_from_hub`` entries pinned to the model repos' commits (``--space-weights hub``: those
just published, or ``--revision KEY=SHA`` for ``--out``; the model repos must be public). The hardware is
requested for the Space, and ``FER_HUB_ORG`` is set as its variable.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

from fer_core.card import render_model_card
from fer_core.commands import space
from fer_core.files import project_root
from fer_core.pretrained import PRETRAINED
from fer_core.sources import pin_mismatch
from fer_core.weights import CONFIG_FILE, load_weights, read_config

ROOT = project_root()
MODEL_FILES = (".safetensors", ".json", ".md", ".png")


def model_files(key: str, weights_dir: Path, org: str) -> dict[str, Path | bytes]:
    """The files of a model repo, from its pinned folder (refused otherwise)."""
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
    files: dict[str, Path | bytes] = {p.name: p for p in sorted(folder.iterdir())
                                      if p.is_file() and p.suffix in MODEL_FILES}
    if "README.md" not in files:
        files["README.md"] = render_model_card(read_config(folder / CONFIG_FILE), f"{org}/{entry.repo_name}").encode()
    return files


def tag_commit(api, repo_id: str, tag: str, oid: str) -> str:
    """Put ``tag`` on commit ``oid``: created, moved (deleted and created again: the Hub does not move a tag that
    exists), or left where it is. Says which."""
    old = next((t.target_commit for t in api.list_repo_refs(repo_id).tags if t.name == tag), None)
    if old == oid:
        return f"tag {tag} already on it"
    if old is not None:
        api.delete_tag(repo_id, tag=tag)
    api.create_tag(repo_id, tag=tag, revision=oid)
    return f"tag {tag} moved there from {old}" if old else f"tagged {tag}"


def upload(api, files: dict, repo_id: str, repo_type: str, message: str, staging: Path, exact: bool):
    """Write ``files`` to a folder under ``staging`` and upload that folder in one go (``exact``: the repo's
    other files are removed, ``.gitattributes`` aside)."""
    folder = space.write_folder(files, staging / repo_type / repo_id)
    return api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type, commit_message=message,
                             delete_patterns="*" if exact else None)


def parse_revisions(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, sha = item.partition("=")
        if not sep or key not in PRETRAINED:
            raise SystemExit(f"--revision {item!r}: expected KEY=COMMIT with KEY one of {sorted(PRETRAINED)}")
        out[PRETRAINED[key].name] = sha
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--org", default=None, help="owner to publish under (default: FER_HUB_ORG, else your user name)")
    ap.add_argument("--models", default="ddamfn,resnet_dda,fusion")
    ap.add_argument("--weights-dir", type=Path, default=ROOT / "weights")
    ap.add_argument("--space", default="fer-attention-demo", help="the Space's name ('' for none)")
    ap.add_argument("--space-weights", choices=("copy", "hub"), default="copy")
    ap.add_argument("--hardware", choices=space.HARDWARE, default=space.ZERO_GPU, help="the Space's hardware")
    ap.add_argument("--python", default=space.DEFAULT_PYTHON, help="the Space's Python (ZeroGPU: 3.12)")
    ap.add_argument("--revision", action="append", default=[], metavar="KEY=COMMIT",
                    help="a model repo's commit for the Space's preload_from_hub (--out, --dry-run)")
    ap.add_argument("--private", action="store_true")
    ap.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    ap.add_argument("--dry-run", action="store_true", help="list every file, its size and its destination")
    ap.add_argument("--out", type=Path, default=None, help="write the Space to this folder, upload nothing")
    a = ap.parse_args(argv)
    a.models = [k for k in a.models.split(",") if k]
    unknown = [k for k in a.models if k not in PRETRAINED]
    if unknown:
        ap.error(f"unknown models {unknown}; registered: {sorted(PRETRAINED)}")
    if a.private and a.space and a.space_weights == "hub":
        ap.error("a Space cannot preload private model repos (spaces-config-reference): use --space-weights copy")
    try:
        space.check_python(a.python, a.hardware)
    except ValueError as e:
        ap.error(str(e))
    offline = a.dry_run or a.out is not None
    org = a.org or os.environ.get("FER_HUB_ORG", "").strip()
    if not org and offline:
        ap.error("--out and --dry-run need the owner: --org NAME (or FER_HUB_ORG)")
    api = None
    if not offline:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=a.endpoint)
        org = org or api.whoami()["name"]
    settings = {"FER_HUB_ORG": org}  # the registry's repo ids follow it
    if a.weights_dir.resolve() != (ROOT / "weights").resolve():
        settings["FER_WEIGHTS_DIR"] = str(a.weights_dir)  # a fusion's branches are found beside it
    with _environ(settings):
        return publish(a, org, api)


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


def _list(repo_type: str, repo_id: str, files: dict) -> None:
    for path, src in files.items():
        print(f"{repo_type:5s} {repo_id}/{path}  {space.size(src):,d} bytes")


def publish(a, org: str, api) -> int:
    repos = {f"{org}/{PRETRAINED[k].repo_name}": (k, model_files(k, a.weights_dir, org)) for k in a.models}
    commits = parse_revisions(a.revision)
    if api is None:  # written or listed here, nothing sent
        for repo_id, (_, files) in repos.items():
            _list("model", repo_id, files)
        if a.space:
            files = _space_files(a, org, commits)
            _list("space", f"{org}/{a.space}", files)
            if a.out is not None:
                space.write_folder(files, a.out)
                print(f"the Space {org}/{a.space} is in {a.out}: {len(files)} files, "
                      f"{sum(space.size(s) for s in files.values()) / 1e6:.1f} MB")
        if a.dry_run:
            print("dry run: nothing uploaded")
        return 0
    with tempfile.TemporaryDirectory(prefix="fer_publish_") as staging:
        for repo_id, (key, files) in repos.items():
            _list("model", repo_id, files)
            api.create_repo(repo_id, private=a.private, exist_ok=True)
            info = upload(api, files, repo_id, "model", "Publish the weights, config and model card", Path(staging),
                          exact=False)
            commits[key] = info.oid
            entry = PRETRAINED[key]
            print(f"{repo_id}: commit {info.oid}, {tag_commit(api, repo_id, entry.revision, info.oid)} "
                  f"(pin it: python train_scripts/pin.py --revision {entry.name}={info.oid})")
        if a.space:
            _publish_space(a, org, api, commits, Path(staging))
    return 0


def _space_files(a, org: str, commits: dict[str, str]) -> dict:
    preload = None
    if a.space_weights == "hub":
        missing = [k for k in a.models if k not in commits]
        if missing:
            raise SystemExit(f"preload_from_hub needs each model repo's commit: --revision KEY=COMMIT for {missing}")
        preload = {k: commits[k] for k in a.models}
    try:
        return space.space_files(org, a.models, a.weights_dir, a.hardware, a.python, preload)
    except ValueError as e:
        raise SystemExit(str(e)) from None


def _publish_space(a, org: str, api, commits: dict[str, str], staging: Path) -> None:
    repo_id = f"{org}/{a.space}"
    files = _space_files(a, org, commits)
    _list("space", repo_id, files)
    # the app finds the model repos of this owner (a Space built with --space-weights hub reads them from the cache
    # preload_from_hub filled)
    variables = [{"key": "FER_HUB_ORG", "value": org}]
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", space_hardware=a.hardware,
                    space_variables=variables, private=a.private, exist_ok=True)
    info = upload(api, files, repo_id, "space", "Publish the demo", staging, exact=True)
    api.add_space_variable(repo_id, "FER_HUB_ORG", org)  # an existing Space keeps its settings on create_repo
    api.request_space_hardware(repo_id, a.hardware)
    print(f"{repo_id}: commit {info.oid}; hardware {a.hardware}; variable FER_HUB_ORG={org}")


if __name__ == "__main__":
    raise SystemExit(main())
