"""Helpers shared by the benchmark scripts: timing medians and result files."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = Path(__file__).resolve().parent / "results"


def run_times(fn, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    return statistics.median(run_times(fn, repeats, warmup))


def classify_rates(clf, x, batch: int, repeats: int, warmup: int = 2) -> list[float]:
    """Faces/s of each repeat of an OnnxClassifier on preprocessed faces ``x`` (at least
    512), with the classifier's own TTA (a face and its mirror in one ORT call when it flips):
    256 faces one by one at batch 1, else 512 in chunks of ``batch``."""
    n = 256 if batch == 1 else 512

    def run():
        for i in range(0, n, batch):
            clf.logits(x[i:i + batch])
    return [n / t for t in run_times(run, repeats, warmup)]


def classify_throughput(clf, x, batch: int, repeats: int) -> float:
    """The median of ``classify_rates``."""
    return statistics.median(classify_rates(clf, x, batch, repeats))


def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.cpuinfo import cpu_features, cpu_stamp
    return {**cpu_stamp(), "cpu_features": cpu_features(), "cores": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(), "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_result(name: str, payload: dict) -> Path:
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.io import write_json
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    write_json(path, {"machine": machine(), **payload})
    print(f"wrote {path}")
    return path


def stratified_split(labels, seed: int, take):
    """Per class, a seeded permutation split after ``take(n_class)`` faces; returns the
    sorted indices of the first part and of the rest."""
    import numpy as np
    rng = np.random.default_rng(seed)
    first = []
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        first.append(idx[: take(len(idx))])
    first = np.sort(np.concatenate(first))
    return first, np.setdiff1d(np.arange(len(labels)), first)


def fer2013():
    """Logging for long runs, and FER2013 (path, train, val) as 48-px grey faces."""
    import logging
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.data import load_dataset
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = SHARED / "datasets" / "fer2013"
    return (data, load_dataset(data, "train", size=48, channels=1),
            load_dataset(data, "val", size=48, channels=1))
