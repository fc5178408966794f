"""Publish a weights folder (model.safetensors, config.json, a model card README.md, plots) to a Hub repo.

    python train_scripts/push_to_hub.py weights/ddamfn --repo-id fer-attention/ddamfn-ferplus --revision v2
    python train_scripts/push_to_hub.py weights/ddamfn --dry-run      # print exactly what would be uploaded

The folder is checked with fer_core's strict loader first. The repo id and revision default to the registry
entry whose local_dir is this folder (fer_core/pretrained.py), so a published weight is found by
``load_pretrained(name)``. After uploading, the revision is created as a tag on the new commit.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_core.card import render_model_card  # noqa: E402
from fer_core.pretrained import PRETRAINED  # noqa: E402
from fer_core.weights import CONFIG_FILE, load_weights, read_config, sha256_file  # noqa: E402

UPLOAD_SUFFIXES = (".safetensors", ".json", ".md", ".png", ".csv")


def plan_upload(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in UPLOAD_SUFFIXES)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Publish a weights folder to the Hugging Face Hub.")
    ap.add_argument("folder", type=Path)
    ap.add_argument("--repo-id", default=None)
    ap.add_argument("--revision", default=None, help="tag to create on the uploaded commit (the registry pins it)")
    ap.add_argument("--private", action="store_true")
    ap.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    ap.add_argument("--dry-run", action="store_true", help="print what would be uploaded and exit")
    a = ap.parse_args(argv)

    folder = a.folder.resolve()
    load_weights(folder)  # refuses a broken folder before anything is sent
    config = read_config(folder / CONFIG_FILE)
    entry = next((e for e in PRETRAINED.values() if e.local_dir == folder.name), None)
    repo_id = a.repo_id or (entry.hf_hub_id if entry else None)
    revision = a.revision or (entry.revision if entry else None)
    if not repo_id:
        ap.error(f"no registry entry has local_dir {folder.name!r}: pass --repo-id")
    card = folder / "README.md"
    if not card.exists():
        card.write_text(render_model_card(config, repo_id))
    files = plan_upload(folder)
    print(f"repo: {repo_id} (model{', private' if a.private else ''}); tag after upload: {revision or '-'}")
    for p in files:
        print(f"  {p.name:32s} {p.stat().st_size:>12,d} bytes  sha256 {sha256_file(p)}")
    if a.dry_run:
        print("dry run: nothing uploaded")
        return 0
    from huggingface_hub import HfApi

    api = HfApi(endpoint=a.endpoint)
    api.create_repo(repo_id, private=a.private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, allow_patterns=[p.name for p in files],
                             commit_message=f"Upload {config['architecture']} weights")
    print(f"uploaded: {info}")
    if revision:
        api.create_tag(repo_id, tag=revision, revision=info.oid, exist_ok=True)
        print(f"tagged {revision}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
