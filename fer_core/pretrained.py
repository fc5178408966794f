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
    title: str = ""  # how the weights tables (train_scripts/weights_table.py) name it


PRETRAINED: dict[str, PretrainedEntry] = {}


def _add(entry: PretrainedEntry):
    for key in (entry.name,) + entry.aliases:
        PRETRAINED[key] = entry


_add(PretrainedEntry("ddamfn", "ddamfn", f"{HUB_ORG}/ddamfn-ferplus", "v3", "ddamfn",
                     "e852778f2121d586d83c45aa2e4e959e34ccfa4e71cdd9a2c86a80e87b309f64", aliases=("ddamfn.ferplus",),
                     title="DDAMFN"))
_add(PretrainedEntry("resnet_dda", "resnet18_dda", f"{HUB_ORG}/resnet-dda-ferplus", "v4", "resnet_dda",
                     "2228adcf13dfa47701bd66fd88f8e34412d252e9ca8d8aff5ee9c5ddf1d751d2", aliases=("resnet_dda.ferplus",),
                     title="ResNet18+DDA (DDA on stages 3-4)"))
_add(PretrainedEntry("fusion", "fusion", f"{HUB_ORG}/fusion-ferplus", "v5", "fusion",
                     "a1718ed8c21d0a188bf043f1e1e82a1c0e0df642c8bd1322da5cdd276bd72785", aliases=("fusion.ferplus",),
                     title="Fusion (attention over the two)"))


def list_pretrained() -> list[str]:
    return sorted({e.name for e in PRETRAINED.values()})
