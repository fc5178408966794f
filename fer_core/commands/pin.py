"""Pin the weights in ``weights/``: write the sha256 of each folder's ``model.safetensors`` and ``config.json`` into
``fer_core/pretrained.py`` where they changed, with the next revision (``v7`` -> ``v8``), so that the shipped copies
load again and ``publish.py`` tags them.

    python train_scripts/pin.py            # re-pin what changed (after export.py or fit_balance.py)
    python train_scripts/pin.py --check    # exit 1, saying which, when a shipped folder does not match its pins
    python train_scripts/pin.py --revision ddamfn=9f2c...  # the commit publish.py printed for that repo

Then ``python tests/make_golden.py`` and ``python train_scripts/weights_table.py --write``.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from fer_core import pretrained
from fer_core.files import write_text_atomic
from fer_core.weights import CONFIG_FILE, WEIGHTS_FILE, sha256_file

REGISTRY = Path(pretrained.__file__)


@dataclass
class Change:
    name: str
    old: dict  # {"sha256", "config_sha256", "revision"}
    new: dict

    def __str__(self):
        what = [k for k in ("sha256", "config_sha256") if self.old[k] != self.new[k]]
        shas = ", ".join(f"{self.old[k][:12]}... -> {self.new[k][:12]}..." for k in what)
        return (f"{self.name}: " + (f"{', '.join(what)} changed ({shas}); " if what else "")
                + f"revision {self.old['revision']} -> {self.new['revision']}")


def next_revision(revision: str) -> str:
    m = re.fullmatch(r"v(\d+)", revision)
    if not m:
        raise SystemExit(f"revision {revision!r} is not a vN tag: pass --revision NAME=REVISION")
    return f"v{int(m.group(1)) + 1}"


def read_registry(path=REGISTRY) -> dict:
    """``PRETRAINED`` as the file at ``path`` says now (not as this process imported it)."""
    spec = importlib.util.spec_from_file_location("_pins", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_pins"] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["_pins"]
    return module.PRETRAINED


def changes(weights_dir=pretrained.PROJECT_WEIGHTS, revisions: dict | None = None, registry=REGISTRY) -> list[Change]:
    """What differs between the pins in ``registry`` and the folders, one per registered weight (aliases once): a
    changed folder gets ``revisions[name]`` or the next vN tag; ``revisions`` alone re-pins an unchanged one."""
    revisions, out = dict(revisions or {}), []
    entries = {e.name: e for e in read_registry(registry).values()}
    unknown = set(revisions) - set(entries)
    if unknown:
        raise SystemExit(f"--revision: no registered weight {sorted(unknown)} (registered: {sorted(entries)})")
    for entry in entries.values():
        if entry.sha256 is None and entry.config_sha256 is None:
            continue  # unpinned: checked for self-consistency only
        folder = Path(weights_dir) / entry.local_dir
        if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
            raise SystemExit(f"{entry.name}: {folder} lacks {WEIGHTS_FILE} or {CONFIG_FILE}")
        now = {"sha256": sha256_file(folder / WEIGHTS_FILE), "config_sha256": sha256_file(folder / CONFIG_FILE)}
        old = {"sha256": entry.sha256, "config_sha256": entry.config_sha256, "revision": entry.revision}
        moved = now["sha256"] != old["sha256"] or now["config_sha256"] != old["config_sha256"]
        if moved or entry.name in revisions:
            rev = revisions.get(entry.name) or next_revision(entry.revision)
            out.append(Change(entry.name, old, {**now, "revision": rev}))
    return out


def rewrite(text: str, change: Change) -> str:
    """The registry's source with one entry's pins and revision replaced (each pin is a unique 64-digit string)."""
    start = text.index(f'_add(PretrainedEntry("{change.name}",')
    end = min(i for i in (text.find("\n_add(", start), text.find("\n\n", start), len(text)) if i >= 0)
    block = text[start:end]
    for key in ("sha256", "config_sha256"):
        if change.old[key] != change.new[key]:
            if block.count(f'"{change.old[key]}"') != 1:
                raise SystemExit(f"{change.name}: its {key} is not written once in the registry: edit it by hand")
            block = block.replace(f'"{change.old[key]}"', f'"{change.new[key]}"')
    rev = re.compile(r'(PretrainedEntry\("[^"]+",\s*"[^"]+",\s*"[^"]+",\s*)"' + re.escape(change.old["revision"]) + '"')
    block, n = rev.subn(lambda m: f'{m.group(1)}"{change.new["revision"]}"', block)
    if n != 1:
        raise SystemExit(f"{change.name}: its revision is not where it is expected in the registry: edit it by "
                         "hand")
    return text[:start] + block + text[end:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", default=str(pretrained.PROJECT_WEIGHTS))
    ap.add_argument("--registry", default=str(REGISTRY), help="the file that holds the pins")
    ap.add_argument("--revision", action="append", default=[], metavar="NAME=REVISION",
                    help="the revision for this weight (a tag, or the commit publish.py printed); default for a "
                         "changed folder: the next vN tag")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a folder does not match")
    a = ap.parse_args(argv)
    revisions = dict(r.split("=", 1) for r in a.revision if "=" in r)
    if len(revisions) != len(a.revision):
        raise SystemExit("--revision takes NAME=REVISION, e.g. ddamfn=v8")
    found = changes(a.weights_dir, revisions, a.registry)
    if a.check:
        for c in found:
            print(f"not as pinned: {c}")
        if found:
            raise SystemExit(1)
        print("every shipped folder matches its pins")
        return found
    if not found:
        print("every shipped folder matches its pins: nothing to change")
        return found
    registry = Path(a.registry)
    text = registry.read_text()
    for c in found:
        text = rewrite(text, c)
        print(f"pinned {c}")
    write_text_atomic(registry, text)
    print(f"wrote {registry}; next: python tests/make_golden.py, python train_scripts/weights_table.py --write")
    return found


if __name__ == "__main__":
    raise SystemExit(main())
