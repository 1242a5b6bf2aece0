"""Calibration and uncertainty on numpy arrays: temperature scaling fitted on val, a
top-label confidence map on top of it, selective prediction (accuracy vs coverage),
predictive entropy and mutual information."""
from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


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


def fit_top_label_map(probs: np.ndarray, labels: np.ndarray, bins: int = 15):
    """Top-label histogram binning (Gupta & Ramdas, 2021) made monotone: equal-mass bins of
    the top probability, each mapped to its accuracy, pooled (PAV) where accuracy would fall
    as confidence rises. Returns the knots (mean confidence, accuracy) for ``np.interp``.

    Why more than a temperature: a model trained with label smoothing caps its confidence
    near 1 - smoothing, so it is over-confident in the middle and under-confident at the
    top; one temperature moves both the same way and cannot fix that."""
    conf = probs.max(1)
    ok = (probs.argmax(1) == labels).astype(float)
    order = np.argsort(conf, kind="mergesort")
    xs, vals, wts = [], [], []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk) == 0:
            continue
        xs.append([conf[chunk].mean()])
        vals.append(ok[chunk].mean())
        wts.append(float(len(chunk)))
        while len(vals) > 1 and vals[-2] > vals[-1]:          # pool adjacent violators
            w = wts[-2] + wts[-1]
            vals[-2:] = [(vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w]
            wts[-2:] = [w]
            xs[-2:] = [xs[-2] + xs[-1]]
    kx = np.array([np.mean(x) for x in xs])
    return kx, np.clip(np.array(vals), 1e-4, 1 - 1e-4)


MARGIN = 1e-3   # the top class stays ahead by at least this much: visible in 4-decimal outputs


def apply_top_label_map(probs: np.ndarray, kx, ky) -> np.ndarray:
    """Replace each face's top probability by the map's value; the other classes keep their
    ratios and share the rest. The top class stays the top class (its new value is raised
    MARGIN above the runner-up where the map would push it below), so accuracy and the
    predicted labels do not change."""
    kx, ky = np.asarray(kx, float), np.asarray(ky, float)
    if len(kx) == 0 or len(probs) == 0:
        return probs
    p = probs.astype(np.float64)
    top = p.argmax(1)
    rows = np.arange(len(p))
    c = p[rows, top]
    second = np.partition(p, -2, axis=1)[:, -2] if p.shape[1] > 1 else np.zeros(len(p))
    new = np.interp(c, kx, ky)
    floor = second / np.maximum(1 - c + second, 1e-12)          # where top' == second'
    new = np.maximum(new, floor + MARGIN)        # floor <= 0.5, so new stays < 1
    q = p * ((1 - new) / np.maximum(1 - c, 1e-12))[:, None]
    q[rows, top] = new
    return q.astype(probs.dtype)


def cross_fitted_ece(logits: np.ndarray, labels: np.ndarray, *, bins: int = 15, folds: int = 5,
                     seed: int = 0) -> dict:
    """Honest ECE of the two calibrators on the data they are fitted on: K-fold cross
    fitting, each fold calibrated by what was fitted on the other folds, ECE of the pooled
    out-of-fold probabilities."""
    from ferkit.evaluation.metrics import expected_calibration_error as ece
    perm = np.random.default_rng(seed).permutation(len(labels))
    ts = np.zeros(logits.shape)
    both = np.zeros(logits.shape)
    for f in np.array_split(perm, folds):
        rest = np.setdiff1d(perm, f)
        t = fit_temperature(logits[rest], labels[rest])
        kx, ky = fit_top_label_map(softmax(logits[rest] / t), labels[rest], bins)
        ts[f] = softmax(logits[f] / t)
        both[f] = apply_top_label_map(ts[f], kx, ky)
    return {"folds": folds, "seed": seed, "temperature": ece(ts, labels)[0],
            "temperature+top_label_map": ece(both, labels)[0]}


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
