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


_add(PretrainedEntry("ddamfn", "ddamfn", f"{HUB_ORG}/ddamfn-ferplus", "v1", "ddamfn",
                     "c35975020d308279bf6ba7a0f2d550fee08d466575304d4015938b5645208b5e", aliases=("ddamfn.ferplus",)))
_add(PretrainedEntry("resnet_dda", "resnet18_dda", f"{HUB_ORG}/resnet-dda-ferplus", "v1", "resnet_dda",
                     "4be44f8ee1b12b2766134dba775f175560fbf20b2a77286ec20ecbd7e107a5f4", aliases=("resnet_dda.ferplus",)))
_add(PretrainedEntry("fusion", "fusion", f"{HUB_ORG}/fusion-ferplus", "v1", "fusion",
                     "82bdb0a0083ae5885528a9f190a4d8fc1e268255266e9cbd0a58aa36af0b897f", aliases=("fusion.ferplus",)))


def list_pretrained() -> list[str]:
    return sorted({e.name for e in PRETRAINED.values()})
