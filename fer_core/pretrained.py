"""Where each published weight lives: a Hub repo pinned to a revision, and the copy shipped in ``weights/``.

``sha256`` pins the content of ``model.safetensors``: the Hub copy at ``revision`` and the copy in ``weights/`` are
the same file, and both are checked against it on load (``tests/test_weights.py`` checks the shipped copies). New
weights get a new revision and a new pin. An entry whose sha256 is None is checked for self-consistency only (the
file against the sha256 its own config.json records).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROJECT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"  # the copies shipped with the code
HUB_ORG = "fer-attention"  # where train_scripts/push_to_hub.py publishes by default


@dataclass(frozen=True)
class PretrainedEntry:
    name: str
    architecture: str
    hf_hub_id: str
    revision: str
    local_dir: str  # relative to the project's weights/ folder
    sha256: str | None = None
    aliases: tuple[str, ...] = ()


PRETRAINED: dict[str, PretrainedEntry] = {}


def _add(entry: PretrainedEntry):
    for key in (entry.name,) + entry.aliases:
        PRETRAINED[key] = entry


_add(PretrainedEntry("ddamfn", "ddamfn", f"{HUB_ORG}/ddamfn-ferplus", "v2", "ddamfn",
                     "58ee1560905a81541c599da03a15a0c86f8f46e2b5b2410afd28b07288a0cc65", aliases=("ddamfn.ferplus",)))
_add(PretrainedEntry("resnet_dda", "resnet18_dda", f"{HUB_ORG}/resnet-dda-ferplus", "v2", "resnet_dda",
                     "acc5e5710f3999b3060c7a921385aa32ef791aaa91c4fba52d23acc2bdb1c225", aliases=("resnet_dda.ferplus",)))
_add(PretrainedEntry("fusion", "fusion", f"{HUB_ORG}/fusion-ferplus", "v2", "fusion",
                     "8c8032b80a83cd66068661c859b43799776670f877681c03407cc4a1c5baf2f6", aliases=("fusion.ferplus",)))


def list_pretrained() -> list[str]:
    return sorted({e.name for e in PRETRAINED.values()})
