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
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"  # the two files of a weights folder


class WeightsError(RuntimeError):
    """A weights file or config that cannot be used; the message names the file and what is wrong."""


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


_add(PretrainedEntry("ddamfn", "ddamfn", "ddamfn-ferplus", "v9", "ddamfn",
                     "4436fd6e3b4fd8dcd563f048cac1045e2772dc65c5506dcd7c0bd3d399fbfe39",
                     "7570cf6165bc6c27707f87940bf27b5e161caaa704f22c88a411796857a93ba4", aliases=("ddamfn.ferplus",),
                     title="DDAMFN"))
_add(PretrainedEntry("resnet_dda", "resnet18_dda", "resnet-dda-ferplus", "v8", "resnet_dda",
                     "a26880f994a147dd88fcc36c82ccb6a68f55857327c407a59251ddd9f9044c70",
                     "a480aaaf299e90abe7f865a8a7605a58148e635615572718e5ee13e9bbe2ad88",
                     aliases=("resnet_dda.ferplus",), title="ResNet18+DDA (DDA on stages 3-4)"))
_add(PretrainedEntry("fusion", "fusion", "fusion-ferplus", "v10", "fusion",
                     "18184edf56de4c107c02392752cc345c9fe495bdd55b86c8bc49681dc118a2ac",
                     "cec2eea21c3000059e538d496126d71a9d3c1371f4e05ea4a1d41d72d75c7da3", aliases=("fusion.ferplus",),
                     title="Fusion (attention over the two)"))


def list_pretrained() -> list[str]:
    return sorted({e.name for e in PRETRAINED.values()})


def entry_for_sha256(sha256: str) -> PretrainedEntry | None:
    """The registered entry whose pinned ``model.safetensors`` has this sha256 (or starts with it), if any."""
    if not sha256:
        return None
    return next((e for e in PRETRAINED.values() if e.sha256 and e.sha256.startswith(sha256)), None)
