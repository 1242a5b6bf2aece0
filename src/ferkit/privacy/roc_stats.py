"""ROC curves and the statistics of their AUC, for membership-inference attacks (score higher
= member): the ROC itself, a 95% interval of one AUC, and DeLong's paired test of two AUCs
measured on the same faces (is model A's leak really larger than model B's?)."""
from __future__ import annotations

import math

import numpy as np


def roc(scores_in: np.ndarray, scores_out: np.ndarray):
    """FPR, TPR over all thresholds (higher score = member), and the AUC."""
    s = np.concatenate([scores_in, scores_out])
    y = np.concatenate([np.ones(len(scores_in)), np.zeros(len(scores_out))])
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]   # one point per distinct threshold
    tpr = np.concatenate([[0], np.cumsum(y)[last] / max(y.sum(), 1)])
    fpr = np.concatenate([[0], np.cumsum(1 - y)[last] / max((1 - y).sum(), 1)])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def auc_ci95(auc: float, n_in: int, n_out: int) -> tuple[float, float]:
    """95% interval of an AUC from its standard error (Hanley & McNeil 1982): is an attack's
    AUC distinguishable from 0.5?"""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_in - 1) * (q1 - auc * auc)
           + (n_out - 1) * (q2 - auc * auc)) / max(n_in * n_out, 1)
    half = 1.96 * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x, ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[0, np.nonzero(np.diff(xs))[0] + 1]
    ends = np.r_[starts[1:], len(xs)]
    r = np.empty(len(x))
    r[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return r


def _placements(scores_in: np.ndarray, scores_out: np.ndarray):
    """DeLong's structural components (Sun & Xu 2014, by midranks): for each member the share
    of non-members it outscores (V10), for each non-member the share of members that outscore
    it (V01); ties count one half. The AUC is the mean of either."""
    m, n = len(scores_in), len(scores_out)
    r_all = _midranks(np.concatenate([scores_in, scores_out]))
    v10 = (r_all[:m] - _midranks(scores_in)) / n
    v01 = 1.0 - (r_all[m:] - _midranks(scores_out)) / m
    return v10, v01


def delong_paired(a_in, a_out, b_in, b_out) -> dict:
    """DeLong et al. (1988) test of AUC(a) - AUC(b) for two attacks scored on the SAME faces
    (index i of a_in and b_in is one member, likewise for non-members). Pairing removes the
    face-to-face variation both attacks share, so the test is far tighter than comparing two
    separate intervals. Returns both AUCs, the difference, its 95% interval and the two-sided
    p-value of "no difference"."""
    a_in, a_out, b_in, b_out = (np.asarray(x, dtype=np.float64) for x in (a_in, a_out, b_in, b_out))
    if a_in.shape != b_in.shape or a_out.shape != b_out.shape:
        raise ValueError("a paired AUC test needs both attacks scored on the same faces: "
                         f"members {a_in.shape} vs {b_in.shape}, non-members "
                         f"{a_out.shape} vs {b_out.shape}")
    m, n = len(a_in), len(a_out)
    if m < 2 or n < 2:
        raise ValueError("a paired AUC test needs at least 2 members and 2 non-members")
    va10, va01 = _placements(a_in, a_out)
    vb10, vb01 = _placements(b_in, b_out)
    d10, d01 = va10 - vb10, va01 - vb01
    var = d10.var(ddof=1) / m + d01.var(ddof=1) / n
    se = math.sqrt(max(var, 0.0))
    diff = float(va10.mean() - vb10.mean())
    if se == 0:                         # identical placements: no spread to test against
        p = 1.0 if diff == 0 else 0.0
    else:
        p = math.erfc(abs(diff) / se / math.sqrt(2))
    return {"auc_a": float(va10.mean()), "auc_b": float(vb10.mean()), "difference": diff,
            "ci95": (diff - 1.96 * se, diff + 1.96 * se), "p_value": float(p)}
