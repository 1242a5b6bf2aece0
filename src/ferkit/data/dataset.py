"""Format auto-detection used by train and evaluate: which reader a source needs, and its
splits. The in-memory type is data/arrays.py (FaceArray), which the readers fill."""
from __future__ import annotations

import logging
from pathlib import Path

from ferkit.data import readers
from ferkit.data.arrays import FaceArray, LoadReport, assemble  # noqa: F401 (re-exported)
from ferkit.errors import DataError
from ferkit.labels import ClassSpec

log = logging.getLogger(__name__)

SPLIT_ALIASES = {
    "train": ("train", "training", "FER2013Train", "Training"),
    "val": ("val", "valid", "validation", "PublicTest", "FER2013Valid"),
    "test": ("test", "PrivateTest", "FER2013Test"),
}


def find_split(root: Path, split: str) -> Path | None:
    """The sub-folder of ``root`` holding ``split`` under any of its usual names."""
    for alias in SPLIT_ALIASES.get(split, (split,)):
        for cand in (root / alias, root / alias.lower()):
            if cand.is_dir():
                return cand
    return None


def split_if_present(source: str | Path, split: str) -> str | None:
    """``split`` when ``source`` is a folder holding it (or a FER2013 CSV), else None."""
    p = Path(source)
    if p.is_dir():
        return split if find_split(p, split) is not None else None
    return split if p.suffix.lower() == ".csv" else None


def load_dataset(source: str | Path, split: str | None = None, *, size: int = 48,
                 channels: int = 1, spec: ClassSpec | None = None, skip_bad: bool = False,
                 soft: bool = False, workers: int = 4) -> FaceArray:
    """Load any supported layout as a FaceArray.

    ``source`` may be a FER2013 challenge CSV (``emotion,pixels,Usage``), a label file
    (CSV ``path,label``), a FER+ folder (``label.csv`` with vote counts), or an image folder
    (``<split>/<class>/*`` or ``<class>/*``). ``split`` picks train/val/test where the source
    holds several; ``soft`` asks FER+ for vote distributions.
    """

    spec = spec or ClassSpec()
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        kind = readers.sniff_csv(path)
        if kind == "fer2013":
            return readers.read_fer_csv(path, split, spec=spec, size=size, channels=channels,
                                        skip_bad=skip_bad)
        return readers.read_label_file(path, spec=spec, size=size, channels=channels,
                                       skip_bad=skip_bad, workers=workers)
    if split is not None:
        sub = find_split(path, split)
        if sub is not None:
            path = sub
        elif not (path / "label.csv").exists() and not _looks_like_class_root(path):
            raise DataError(f"{source}: no '{split}' split folder found (looked for "
                            f"{', '.join(SPLIT_ALIASES.get(split, (split,)))})")
    if (path / "label.csv").exists():
        return readers.read_ferplus(path, spec=spec, size=size, channels=channels,
                                    skip_bad=skip_bad, soft=soft, workers=workers)
    return readers.read_folder(path, spec=spec, size=size, channels=channels,
                               skip_bad=skip_bad, workers=workers)


def _looks_like_class_root(path: Path) -> bool:
    return any(p.is_dir() and p.name.lower() not in
               {a.lower() for v in SPLIT_ALIASES.values() for a in v} for p in path.iterdir())
