"""Emotion taxonomies, class-name synonyms, class selection/merging and the negative set.

Every other module takes class names from here, so that other datasets' taxonomies
(AffectNet, FER+, CK+, national datasets with their own classes) work everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ferkit.errors import ConfigError

FER2013 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
AFFECTNET8 = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
CKPLUS = ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
TAXONOMIES = {"fer2013": FER2013, "ferplus": FERPLUS, "affectnet8": AFFECTNET8, "ckplus": CKPLUS}

#: Emotions counted in the negative-emotion score, whatever the taxonomy.
NEGATIVE = frozenset({"angry", "disgust", "fear", "sad", "contempt", "negative"})

SYNONYMS = {
    "anger": "angry", "mad": "angry",
    "disgusted": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happiness": "happy", "joy": "happy",
    "sadness": "sad", "unhappy": "sad",
    "surprised": "surprise", "suprise": "surprise",
    "calm": "neutral", "neutrality": "neutral",
}


def canonical(name: str) -> str:
    """Lower-cased class name with common synonyms folded (``Sadness`` -> ``sad``)."""
    key = name.strip().lower()
    return SYNONYMS.get(key, key)


def negative_indices(classes) -> list[int]:
    """Indices of the classes that count towards the negative-emotion score."""
    return [i for i, c in enumerate(classes) if canonical(c) in NEGATIVE]


def parse_mapping(text: str | None) -> dict[str, str]:
    """Parse ``"sadness=sad,disgust=angry"`` into a rename/merge mapping."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"class mapping {part!r} must look like old=new (e.g. sadness=sad)")
        old, new = part.split("=", 1)
        out[old.strip().lower()] = new.strip().lower()
    return out


@dataclass(frozen=True)
class ClassSpec:
    """How raw dataset labels become training classes.

    ``mapping`` renames or merges classes (applied after synonym folding), ``keep`` selects
    and orders the classes (None: every class found, in the dataset's order), and
    ``binary_negative`` collapses everything into ``negative`` vs ``other``.
    """

    keep: tuple[str, ...] | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    binary_negative: bool = False

    def map_name(self, raw: str) -> str:
        name = canonical(raw)
        name = self.mapping.get(name, name)
        name = canonical(name)
        if self.binary_negative:
            return "negative" if name in NEGATIVE else "other"
        return name

    def resolve(self, found: list[str]) -> list[str]:
        """Final ordered class list given the mapped class names found in the data."""
        if self.binary_negative:
            return ["negative", "other"]
        if self.keep is None:
            seen: list[str] = []
            for name in found:
                if name not in seen:
                    seen.append(name)
            return seen
        return [canonical(k) for k in self.keep]


def parse_classes(text: str | None) -> tuple[str, ...] | None:
    """``"fer2013"`` -> that taxonomy; ``"angry,happy,sad"`` -> that subset; None -> all."""
    if not text:
        return None
    if text.lower() in TAXONOMIES:
        return TAXONOMIES[text.lower()]
    names = tuple(canonical(t) for t in text.split(",") if t.strip())
    if len(names) < 2:
        raise ConfigError(f"--classes {text!r}: name at least two classes or a taxonomy "
                          f"({', '.join(TAXONOMIES)})")
    return names
