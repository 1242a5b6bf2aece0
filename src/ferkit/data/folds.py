"""Stratified k-fold assignment of a training split, for cross-fitting: k models, each
trained without one fold, score the faces they never saw ("out-of-fold"), so every train
face gets a prediction as honest as a validation one (see train/crossfit.py)."""
from __future__ import annotations

import re

import numpy as np

from ferkit.errors import ConfigError

_FOLD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_fold(spec: str) -> tuple[int, int]:
    """'2/5' -> (2, 5): fold 2 of 5, counted from 1."""
    m = _FOLD.match(str(spec))
    if not m:
        raise ConfigError(f"fold {spec!r}: expected I/K, e.g. 2/5 (fold I of K, from 1)")
    i, k = int(m.group(1)), int(m.group(2))
    if k < 2 or not 1 <= i <= k:
        raise ConfigError(f"fold {spec!r}: needs K >= 2 and 1 <= I <= K")
    return i, k


def fold_ids(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The fold (0..k-1) of each face: within every class the faces are shuffled with
    ``seed`` and dealt round-robin, so each fold holds each class's share within one face."""
    labels = np.asarray(labels)
    out = np.empty(len(labels), np.int64)
    rng = np.random.default_rng(seed)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        out[idx] = np.arange(len(idx)) % k
    return out


def fold_mask(labels: np.ndarray, spec: str, seed: int = 0) -> np.ndarray:
    """Boolean mask of the faces a run of fold ``spec`` ('I/K') trains on: all but fold I."""
    i, k = parse_fold(spec)
    return fold_ids(labels, k, seed) != i - 1
