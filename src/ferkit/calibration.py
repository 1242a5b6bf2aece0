"""Calibration and uncertainty on numpy arrays: temperature scaling fitted on val,
selective prediction (accuracy vs coverage), predictive entropy and mutual information."""
from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, t: float) -> float:
    return float(-log_softmax(logits / t)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL (golden-section search on log T)."""
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def entropy(p: np.ndarray) -> np.ndarray:
    """Predictive entropy in nats."""
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)


def selective(probs: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None = None):
    """Accuracy when keeping the most confident share of faces: (coverage, accuracy) arrays
    plus accuracy at 80% and 90% coverage."""
    conf = probs.max(1) if confidence is None else confidence
    order = np.argsort(-conf, kind="mergesort")
    correct = (probs.argmax(1) == labels)[order]
    n = len(labels)
    cov = np.arange(1, n + 1) / n
    acc = np.cumsum(correct) / np.arange(1, n + 1)
    at = {str(c): float(acc[max(0, int(np.ceil(c * n)) - 1)]) for c in (0.8, 0.9)}
    return cov, acc, at


def mc_statistics(samples: np.ndarray) -> dict:
    """From T stochastic probability samples (T, N, K): mean, std, entropy, mutual info."""
    mean = samples.mean(0)
    h = entropy(mean)
    return {"mean": mean, "std": samples.std(0), "entropy": h,
            "mutual_info": h - entropy(samples).mean(0)}
