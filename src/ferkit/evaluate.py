"""`ferkit evaluate`: a model (shipped name or ONNX path) on a labelled dataset."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .analysis.classify import OnnxClassifier
from .data import load_dataset
from .labels import ClassSpec, parse_mapping
from .metrics import classification_report

log = logging.getLogger(__name__)


def evaluate(data: str | Path, model=None, *, split: str | None = "val", tta: bool | None = None,
             threads: int = 2, class_map: str | None = None, skip_bad: bool = False,
             plots: str | Path | None = None) -> dict:
    """Accuracy, macro-F1, per-class figures, confusion matrix and ECE of ``model``.

    The data's classes are matched to the model's (synonyms folded, ``class_map`` applied);
    a dataset with only some of the model's classes is scored against all its outputs, and
    faces of classes the model does not know are ignored and counted.
    """
    clf = OnnxClassifier(model, threads=threads, tta=tta)
    spec = ClassSpec(tuple(clf.classes), parse_mapping(class_map))
    src = Path(data)
    use_split = split if src.is_dir() or _is_fer_csv(src) else None
    from .data.dataset import find_split
    if src.is_dir() and use_split and find_split(src, use_split) is None:
        use_split = None                   # a folder of class folders: evaluate all of it
    ds = load_dataset(src, use_split, size=clf.size, channels=clf.channels, spec=spec,
                      skip_bad=skip_bad)
    t0 = time.perf_counter()
    probs = clf.predict_proba(ds.images)
    dt = time.perf_counter() - t0
    report = classification_report(probs, ds.labels, clf.classes)
    report.update({"model": str(clf.ref.path), "model_name": clf.ref.name, "data": str(data),
                   "split": use_split, "tta_flip": clf.tta, "temperature": clf.temperature,
                   "faces_per_s": len(ds) / dt if dt > 0 else None,
                   "ignored_classes": ds.report.dropped_classes,
                   "skipped": ds.report.skipped})
    if plots:
        from .plots import confusion_matrix_png, reliability_png
        out = Path(plots)
        out.mkdir(parents=True, exist_ok=True)
        confusion_matrix_png(report, out / "confusion_matrix.png")
        reliability_png(report, out / "reliability.png")
    return report


def _is_fer_csv(p: Path) -> bool:
    if not p.is_file():
        return False
    with open(p, encoding="utf-8-sig", errors="replace") as fh:
        return fh.readline().lower().replace(" ", "").startswith("emotion,pixels")
