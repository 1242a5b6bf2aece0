"""`ferkit evaluate`: a model (shipped name or ONNX path) on a labelled dataset."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ferkit.data import load_dataset
from ferkit.evaluation.calibration import selective, softmax
from ferkit.evaluation.metrics import classification_report, expected_calibration_error
from ferkit.labels import ClassSpec, parse_mapping
from ferkit.zoo.classify import OnnxClassifier

log = logging.getLogger(__name__)


def evaluate(data: str | Path, model=None, *, split: str | None = "val", tta: bool | None = None,
             threads: int = 2, class_map: str | None = None, skip_bad: bool = False,
             plots: str | Path | None = None, mc_dropout: int = 0) -> dict:
    """Accuracy, macro-F1, per-class figures, confusion matrix and ECE of ``model``.

    The data's classes are matched to the model's (synonyms folded, ``class_map`` applied);
    a dataset with only some of the model's classes is scored against all its outputs, and
    faces of classes the model does not know are ignored and counted.
    """
    return _evaluate(data, model, split=split, tta=tta, threads=threads, class_map=class_map,
                     skip_bad=skip_bad, plots=plots, mc_dropout=mc_dropout)[0]


def compare(data: str | Path, model_a, model_b, **kw) -> dict:
    """Two models on the same faces: both reports and a paired comparison of their
    correctness face by face (McNemar's exact test, and the accuracy difference with its 95%
    interval), which is far more sensitive than comparing two separate accuracies."""
    from ferkit.errors import ConfigError
    rep_a, ok_a, paths_a = _evaluate(data, model_a, **kw)
    rep_b, ok_b, paths_b = _evaluate(data, model_b, **kw)
    if rep_a["classes"] != rep_b["classes"] or paths_a != paths_b:
        raise ConfigError(f"{model_a} and {model_b} see different classes or faces in {data}; "
                          f"compare models of the same taxonomy")
    return {"a": rep_a, "b": rep_b, "paired": paired_accuracy(ok_a, ok_b)}


def paired_accuracy(ok_a, ok_b) -> dict:
    """McNemar's exact test on the discordant faces and the paired accuracy difference."""
    import math

    import numpy as np
    ok_a, ok_b = np.asarray(ok_a, bool), np.asarray(ok_b, bool)
    only_a, only_b = int((ok_a & ~ok_b).sum()), int((~ok_a & ok_b).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        p = 1.0
    else:                                   # two-sided exact binomial(n, 1/2) tail
        logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
                for i in range(k + 1)]
        p = min(1.0, 2 * sum(math.exp(v) for v in logs))
    d = ok_a.astype(float) - ok_b.astype(float)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"n": int(len(d)), "accuracy_a": float(ok_a.mean()), "accuracy_b": float(ok_b.mean()),
            "difference": float(d.mean()), "ci95": [float(d.mean() - 1.96 * se),
                                                    float(d.mean() + 1.96 * se)],
            "only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": float(p)}


def _evaluate(data, model, *, split="val", tta=None, threads=2, class_map=None, skip_bad=False,
              plots=None, mc_dropout=0):
    """(report, per-face correctness, face paths) of one model on one dataset."""
    clf = OnnxClassifier(model, threads=threads, tta=tta)
    ds = _load(data, clf, split, class_map, skip_bad)
    t0 = time.perf_counter()
    x = clf.preprocess(ds.images)
    logits = clf.logits(x)
    dt = time.perf_counter() - t0
    if mc_dropout:
        probs = clf.predict_mc(x, mc_dropout, preprocessed=True)["mean"]
    else:
        probs = clf.calibrated(logits)
    report = _scores(clf, ds, logits, probs)
    report.update({"model": str(clf.ref.path), "model_name": clf.ref.name, "data": str(data),
                   "split": ds.split, "tta_flip": clf.tta, "tta": clf.tta_name,
                   "temperature": clf.temperature,
                   "top_label_map": clf.top_label_map is not None,
                   "mc_dropout_passes": mc_dropout,
                   "faces_per_s": len(ds) / dt if dt > 0 else None,
                   "ignored_classes": ds.report.dropped_classes,
                   "skipped": ds.report.skipped})
    if plots:
        from ferkit.evaluation.plots import confusion_matrix_png, reliability_png, selective_png
        out = Path(plots)
        out.mkdir(parents=True, exist_ok=True)
        confusion_matrix_png(report, out / "confusion_matrix.png")
        reliability_png(report, out / "reliability.png")
        selective_png(*selective(probs, ds.labels)[:2], out / "selective.png")
    return report, probs.argmax(1) == ds.labels, list(ds.paths)


def calibrate(model, data: str | Path, *, split: str | None = "val", threads: int = 2,
              bins: int = 15) -> dict:
    """Fit the temperature on labelled (val) faces, then (``bins`` > 0) a top-label
    confidence map on the temperature-scaled probabilities; store both in the model card,
    which ferkit applies by default from then on. Returns the card's calibration block, with
    the in-sample ECE and the honest 5-fold cross-fitted ECE of each step."""
    return _calibrate(model, data, split=split, threads=threads, bins=bins)[0]["calibration"]


CARD_VAL_KEYS = ("n", "accuracy", "macro_f1", "balanced_accuracy", "per_class_accuracy_spread",
                 "ece", "ece_uncalibrated", "accuracy_at_coverage")


def calibrate_and_measure(onnx: str | Path, val: str | Path) -> dict:
    """Release step for a model file: fit its calibration on ``val`` (`calibrate`), and
    write the calibrated model's val metrics (as `ferkit evaluate` reports them) into its
    card as ``metrics.val``, from the same forward pass. Returns the updated card."""
    return _calibrate(onnx, val, measure=True)[0]


def _calibrate(model, data, *, split="val", threads=2, bins=15, measure=False):
    """(card, report): fit and store the calibration; with ``measure``, also score the
    calibrated probabilities and store them as the card's ``metrics.val``."""
    from ferkit.evaluation.calibration import (
        apply_top_label_map,
        cross_fitted_ece,
        fit_temperature,
        fit_top_label_map,
        nll,
    )
    from ferkit.io import write_json
    clf = OnnxClassifier(model, threads=threads)
    ds = _load(data, clf, split, None, False)
    logits = clf.logits(clf.preprocess(ds.images))
    t = fit_temperature(logits, ds.labels)
    probs = p_t = softmax(logits / t)
    block = {"temperature": t, "fitted_on": str(data), "split": ds.split, "n": len(ds),
             "tta_flip": clf.tta, "tta": clf.tta_name,
             "ece_before": expected_calibration_error(softmax(logits), ds.labels)[0],
             "ece_after": expected_calibration_error(p_t, ds.labels)[0],
             "nll_before": nll(logits, ds.labels, 1.0), "nll_after": nll(logits, ds.labels, t)}
    if bins > 0:
        kx, ky = fit_top_label_map(p_t, ds.labels, bins)
        probs = apply_top_label_map(p_t, kx, ky)
        block["top_label_map"] = {"x": kx.tolist(), "y": ky.tolist(), "bins": bins}
        block["ece_after_map"] = expected_calibration_error(probs, ds.labels)[0]
        block["ece_cross_fitted"] = cross_fitted_ece(logits, ds.labels, bins=bins)
    card = dict(clf.ref.card)
    card["temperature"] = t
    card["calibration"] = block
    report = None
    if measure:
        report = _scores(clf, ds, logits, probs)
        card["metrics"] = {**card.get("metrics", {}),
                           "val": {k: report[k] for k in CARD_VAL_KEYS}}
    write_json(clf.ref.path.with_suffix(".json"), card)
    return card, report


def _scores(clf, ds, logits, probs) -> dict:
    """Classification report of ``probs`` (calibrated) plus the uncalibrated ECE of
    ``logits`` and accuracy at 80% / 90% coverage."""
    report = classification_report(probs, ds.labels, clf.classes)
    report["ece_uncalibrated"] = expected_calibration_error(softmax(logits), ds.labels)[0]
    report["accuracy_at_coverage"] = selective(probs, ds.labels)[2]
    return report


def _load(data, clf, split, class_map, skip_bad):
    """The dataset matched to the classifier's classes; ``ds.split`` says what was read."""
    spec = ClassSpec(tuple(clf.classes), parse_mapping(class_map))
    src = Path(data)
    use_split = split if src.is_dir() or _is_fer_csv(src) else None
    from ferkit.data.dataset import find_split
    if src.is_dir() and use_split and find_split(src, use_split) is None:
        use_split = None                   # a folder of class folders: evaluate all of it
    ds = load_dataset(src, use_split, size=clf.size, channels=clf.channels, spec=spec,
                      skip_bad=skip_bad)
    ds.split = use_split
    return ds


def _is_fer_csv(p: Path) -> bool:
    if not p.is_file():
        return False
    with open(p, encoding="utf-8-sig", errors="replace") as fh:
        return fh.readline().lower().replace(" ", "").startswith("emotion,pixels")
