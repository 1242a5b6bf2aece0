"""The in-memory dataset type and the format auto-detection used by train and evaluate."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import ClassSpec

log = logging.getLogger(__name__)

SPLIT_ALIASES = {
    "train": ("train", "training", "FER2013Train", "Training"),
    "val": ("val", "valid", "validation", "PublicTest", "FER2013Valid"),
    "test": ("test", "PrivateTest", "FER2013Test"),
}


@dataclass
class LoadReport:
    """What a reader skipped or dropped, for the log and the CLI summary."""

    skipped: list[str] = field(default_factory=list)          # "file: problem"
    dropped_classes: dict[str, int] = field(default_factory=dict)

    def log(self, source: str) -> None:
        if self.skipped:
            log.warning("%s: skipped %d bad item(s), e.g. %s", source, len(self.skipped),
                        "; ".join(self.skipped[:3]))
        for name, n in sorted(self.dropped_classes.items()):
            log.info("%s: ignored %d face(s) of class %r (not in the selected classes)",
                     source, n, name)


@dataclass
class FaceArray:
    """Faces as one uint8 array (N, H, W) or (N, H, W, 3) with integer labels.

    ``soft`` holds per-face label distributions (N, C) where the source has them (FER+).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    paths: list[str]
    soft: np.ndarray | None = None
    report: LoadReport = field(default_factory=LoadReport)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        binc = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, binc)}

    def subset(self, idx) -> "FaceArray":
        idx = np.asarray(idx)
        return FaceArray(self.images[idx], self.labels[idx], list(self.classes),
                         [self.paths[i] for i in idx],
                         None if self.soft is None else self.soft[idx], self.report)


def assemble(images, raw_labels, paths, spec: ClassSpec, source: str,
             report: LoadReport, soft=None, soft_classes=None) -> FaceArray:
    """Map raw class names through ``spec``, drop unselected classes, build a FaceArray."""
    mapped = [spec.map_name(r) for r in raw_labels]
    classes = spec.resolve(mapped)
    index = {c: i for i, c in enumerate(classes)}
    keep = []
    for i, name in enumerate(mapped):
        if name in index:
            keep.append(i)
        else:
            report.dropped_classes[name] = report.dropped_classes.get(name, 0) + 1
    if not keep:
        raise DataError(f"{source}: no face belongs to the selected classes {classes}; "
                        f"found {sorted(set(mapped))}. Check --classes / --map")
    labels = np.array([index[mapped[i]] for i in keep], dtype=np.int64)
    arr = np.stack([images[i] for i in keep]) if isinstance(images, list) else images[keep]
    soft_out = None
    if soft is not None:
        soft_out = _remap_soft(soft[keep], soft_classes, classes, spec)
    fa = FaceArray(arr, labels, classes, [paths[i] for i in keep], soft_out, report)
    report.log(source)
    return fa


def _remap_soft(soft, soft_classes, classes, spec: ClassSpec) -> np.ndarray:
    out = np.zeros((len(soft), len(classes)), np.float32)
    index = {c: i for i, c in enumerate(classes)}
    for j, raw in enumerate(soft_classes):
        name = spec.map_name(raw)
        if name in index:
            out[:, index[name]] += soft[:, j]
    total = out.sum(1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


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
    from . import readers

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
