"""The canonical label sets and the maps between them, by name.

Every model and dataset in this project speaks in *canonical names* (the FER+ spelling below). Each dataset or
checkpoint has its own class order; a :class:`LabelSet` records that order, and :func:`index_map` translates
indices between two sets through the names, never through bare integers.
"""
from __future__ import annotations

from dataclasses import dataclass

CANONICAL = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")

# Spellings met in folder names, CSVs and other repos, mapped to the canonical name (all lower-case).
SYNONYMS = {
    "neutral": "neutral", "neutrality": "neutral", "calm": "neutral",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness",
    "surprise": "surprise", "surprised": "surprise",
    "sadness": "sadness", "sad": "sadness",
    "anger": "anger", "angry": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear",
    "contempt": "contempt", "contemptuous": "contempt",
}


@dataclass(frozen=True)
class LabelSet:
    """An ordered list of canonical class names: index ``i`` of this set means ``names[i]``."""

    key: str
    names: tuple[str, ...]
    source: str = ""

    def __post_init__(self):
        for n in self.names:
            if n not in CANONICAL:
                raise ValueError(f"label set {self.key!r}: {n!r} is not a canonical label name {CANONICAL}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"label set {self.key!r} repeats a name: {self.names}")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(canonical_name(name))


FERPLUS = LabelSet("ferplus", CANONICAL, "FER+ (Barsoum et al. 2016), label.csv vote columns 0-7")
FER2013 = LabelSet(
    "fer2013", ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    "FER2013 Kaggle 'emotion' column 0-6",
)
RAFDB = LabelSet(
    "rafdb", ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"),
    "RAF-DB basic, list_patition_label.txt labels 1-7 (stored here 0-based)",
)
AFFECTNET7 = LabelSet(
    "affectnet7", ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"),
    "AffectNet expression 0-6",
)
AFFECTNET8 = LabelSet(
    "affectnet8", AFFECTNET7.names + ("contempt",), "AffectNet expression 0-7",
)
# The released DDAMFN checkpoints (RAF-DB and AffectNet-7): Neutral, Happy, Sad, Surprise, Fear, Disgust, Angry.
DDAMFN_OFFICIAL7 = LabelSet("ddamfn_official7", AFFECTNET7.names, "official DDAMFN RAF-DB / AffectNet-7 checkpoints")
DDAMFN_OFFICIAL8 = LabelSet("ddamfn_official8", AFFECTNET8.names, "official DDAMFN AffectNet-8 checkpoint")

LABEL_SETS = {s.key: s for s in (FERPLUS, FER2013, RAFDB, AFFECTNET7, AFFECTNET8, DDAMFN_OFFICIAL7, DDAMFN_OFFICIAL8)}


def canonical_name(name: str) -> str:
    """Map a spelling (``'Angry'``, ``'happy'``, ``'Sadness'``) to its canonical name; unknown names raise."""
    key = name.strip().lower()
    if key not in SYNONYMS:
        raise ValueError(f"unknown expression label {name!r}; known spellings: {sorted(SYNONYMS)}")
    return SYNONYMS[key]


def get_label_set(key_or_names) -> LabelSet:
    """A registered label set by key, or an ad-hoc one from a sequence of names."""
    if isinstance(key_or_names, LabelSet):
        return key_or_names
    if isinstance(key_or_names, str):
        if key_or_names not in LABEL_SETS:
            raise KeyError(f"unknown label set {key_or_names!r}; known: {sorted(LABEL_SETS)}")
        return LABEL_SETS[key_or_names]
    names = tuple(canonical_name(n) for n in key_or_names)
    for s in LABEL_SETS.values():
        if s.names == names:
            return s
    return LabelSet("custom", names)


def index_map(src, dst) -> list[int]:
    """``m[i]`` is the index in ``dst`` of class ``i`` of ``src``, or -1 where ``dst`` lacks that class."""
    src, dst = get_label_set(src), get_label_set(dst)
    return [dst.names.index(n) if n in dst.names else -1 for n in src.names]


def shared_names(a, b) -> tuple[str, ...]:
    """The classes both sets have, in the order of ``a``."""
    a, b = get_label_set(a), get_label_set(b)
    return tuple(n for n in a.names if n in b.names)
