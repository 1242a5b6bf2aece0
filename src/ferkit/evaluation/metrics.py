"""Classification metrics on numpy arrays (no torch): used by training, evaluate and
benchmarks alike, so every number ferkit reports is computed one way."""
from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15):
    """ECE with equal-width confidence bins; also returns the per-bin table for plots."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    ece, table = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            acc, c = float(correct[m].mean()), float(conf[m].mean())
            ece += m.mean() * abs(acc - c)
            table.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()),
                          "accuracy": acc, "confidence": c})
    return float(ece), table


def classification_report(probs: np.ndarray, y_true: np.ndarray, classes) -> dict:
    """Accuracy, macro-F1, balanced accuracy, per-class figures, confusion matrix, ECE.

    Classes absent from ``y_true`` (a folder without neutral, say) stay in the confusion
    matrix and in precision, but are left out of the per-class accuracy spread, balanced
    accuracy and macro-F1, which average over the classes present.
    """
    y_true = np.asarray(y_true)
    k = len(classes)
    pred = probs.argmax(1)
    cm = confusion(y_true, pred, k)
    support = cm.sum(1)
    predicted = cm.sum(0)
    tp = np.diag(cm).astype(float)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k),
                   where=(precision + recall) > 0)
    present = support > 0
    ece, bins = expected_calibration_error(probs, y_true)
    per_class = {c: {"accuracy": float(recall[i]), "precision": float(precision[i]),
                     "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i])} for i, c in enumerate(classes)}
    nll = -np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, None)).mean()
    return {
        "n": int(len(y_true)),
        "classes": list(classes),
        "accuracy": float((pred == y_true).mean()),
        "macro_f1": float(f1[present].mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "per_class": per_class,
        "per_class_accuracy_spread": float(recall[present].max() - recall[present].min()),
        "confusion_matrix": cm.tolist(),
        "ece": ece,
        "nll": float(nll),
        "reliability": bins,
    }
