"""Where each published weight lives: the copy shipped in ``weights/``, and a Hub repo pinned to a revision.

A registered name loads the shipped copy first, with no network call, when that copy matches its pins
(``sha256`` of ``model.safetensors`` and ``config_sha256`` of ``config.json``: the label order, the preprocessing
and the temperature are pinned with the tensors). The Hub serves only a copy that is missing (or does not match
its pins), or when asked: ``FER_WEIGHTS_SOURCE=hub`` (``local`` never goes online; ``auto``, the default, as
described). Whatever the source, the pins are checked. New weights get new pins and a new revision: a tag, or
the commit that ``train_scripts/publish.py`` prints once the repo is published (a commit pins the revision
whole; a tag can be moved). An entry without pins is checked for self-consistency only (the tensors against the
sha256 its own config.json records).

The Hub organisation is a setting: ``FER_HUB_ORG`` (and ``publish.py --org``), default ``fer-attention``. It
must be an organisation (or user) that whoever publishes owns.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"  # the copies shipped with the code
HUB_ORG = "fer-attention"  # the default organisation; FER_HUB_ORG overrides it
SOURCES = ("auto", "local", "hub")


def hub_org() -> str:
    return os.environ.get("FER_HUB_ORG", "").strip() or HUB_ORG


def weights_source() -> str:
    """``FER_WEIGHTS_SOURCE``: auto (the shipped copy when it matches its pins, else the Hub), local, or hub."""
    source = os.environ.get("FER_WEIGHTS_SOURCE", "").strip().lower() or "auto"
    if source not in SOURCES:
        raise ValueError(f"FER_WEIGHTS_SOURCE={source!r}: expected one of {SOURCES}")
    return source


@dataclass(frozen=True)
class PretrainedEntry:
    name: str
    architecture: str
    repo_name: str  # the repo inside the organisation
    revision: str  # a tag or, once published, a commit
    local_dir: str  # relative to the project's weights/ folder
    sha256: str | None = None  # of model.safetensors
    config_sha256: str | None = None  # of config.json
    aliases: tuple[str, ...] = ()
    title: str = ""  # how the weights tables (train_scripts/weights_table.py) name it
    org: str | None = None  # a fixed organisation (a third party's repo); None: hub_org()

    @property
    def hf_hub_id(self) -> str:
        return f"{self.org or hub_org()}/{self.repo_name}"


PRETRAINED: dict[str, PretrainedEntry] = {}


def _add(entry: PretrainedEntry):
    for key in (entry.name,) + entry.aliases:
        PRETRAINED[key] = entry


_add(PretrainedEntry("ddamfn", "ddamfn", "ddamfn-ferplus", "v4", "ddamfn",
                     "e852778f2121d586d83c45aa2e4e959e34ccfa4e71cdd9a2c86a80e87b309f64",
                     "0a59c22f2c687f22731da8a7534ed883e214eb2398c97ed4c4a87cd3245e62df", aliases=("ddamfn.ferplus",),
                     title="DDAMFN"))
_add(PretrainedEntry("resnet_dda", "resnet18_dda", "resnet-dda-ferplus", "v5", "resnet_dda",
                     "2228adcf13dfa47701bd66fd88f8e34412d252e9ca8d8aff5ee9c5ddf1d751d2",
                     "69d9f13b39b4ce7eba87f32c8544edffcd42b8c8344be5e470b2f16d8da2b45d",
                     aliases=("resnet_dda.ferplus",), title="ResNet18+DDA (DDA on stages 3-4)"))
_add(PretrainedEntry("fusion", "fusion", "fusion-ferplus", "v6", "fusion",
                     "5c17c1139260ff796a180e3ffc31c1e5a00b5e61a291f9b83788f868d92a5c9d",
                     "25269a0c12512556ea19faf023025a90c7ca760ef1a5dc8c7d73178466984c70", aliases=("fusion.ferplus",),
                     title="Fusion (attention over the two)"))


def list_pretrained() -> list[str]:
    return sorted({e.name for e in PRETRAINED.values()})
