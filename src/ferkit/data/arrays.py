"""The in-memory dataset type (FaceArray) and the step every reader ends with (assemble:
labels mapped to the class spec, faces of other classes dropped and counted)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ferkit.errors import DataError
from ferkit.labels import ClassSpec

log = logging.getLogger(__name__)


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
