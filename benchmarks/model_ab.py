"""Head-to-head of exported models on one dataset (issue 16's candidates against the shipped
one): val accuracy with each card's TTA, and classification speed through ONNX Runtime on
one thread at batch 1 and 64, timed in alternation (model A, model B, A, B, ...) so that this
shared machine's drifting speed weighs on every model alike; speed ratios to the first.

    python benchmarks/model_ab.py --data ../shared/datasets/ferplus \
        ferplus=ferplus w32=../runs/ferplus_w32_prune/int8.onnx --out ferplus_prune_ab

NAME=MODEL pairs: a shipped name or an .onnx with its card. Run it with the cores idle.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from _common import ROOT, classify_rates, write_result

sys.path.insert(0, str(ROOT / "src"))


def _accuracy(clf, data) -> float:
    z = clf.logits(clf.preprocess(data.images))
    return float((z.argmax(1) == data.labels).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="NAME=MODEL (shipped name or .onnx)")
    ap.add_argument("--data", required=True, help="labelled data; its val split is scored")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", required=True, help="results/<out>.json")
    args = ap.parse_args()
    from ferkit.data import load_dataset
    from ferkit.zoo.classify import OnnxClassifier

    pairs = [m.split("=", 1) for m in args.models]
    if any(len(p) != 2 for p in pairs):
        sys.exit("model_ab: give models as NAME=MODEL")
    val = load_dataset(args.data, "val")
    clfs = {name: OnnxClassifier(path, threads=1) for name, path in pairs}
    rows = {name: {"model": path, "tta": clf.tta_name, "val_accuracy": _accuracy(clf, val),
                   "n": len(val)} for (name, path), clf in zip(pairs, clfs.values())}
    for name, clf in clfs.items():
        if clf.classes != list(val.classes):
            sys.exit(f"model_ab: {name}: classes {clf.classes} differ from the data's")
        print(name, rows[name], flush=True)
    xs = {name: clf.preprocess(val.images[:512]) for name, clf in clfs.items()}
    for batch in (1, 64):
        rates = {name: [] for name in clfs}
        for name, clf in clfs.items():                      # warm each up once
            classify_rates(clf, xs[name], batch, 1)
        for _ in range(args.repeats):                       # alternate: drift hits all
            for name, clf in clfs.items():
                rates[name] += classify_rates(clf, xs[name], batch, 1, warmup=0)
        first = statistics.median(next(iter(rates.values())))
        for name, r in rates.items():
            med = statistics.median(r)
            p10, p90 = np.percentile(r, [10, 90])
            rows[name][f"faces_per_s_1thread_batch{batch}"] = med
            rows[name][f"p10_p90_batch{batch}"] = [float(p10), float(p90)]
            rows[name][f"ratio_to_first_batch{batch}"] = med / first
        print({n: round(statistics.median(r)) for n, r in rates.items()}, flush=True)
    write_result(args.out, {"setup": {"data": args.data, "split": "val", "threads": 1,
                                      "repeats": args.repeats, "faces_timed": [256, 512],
                                      "order": "alternating per repeat"},
                            "rows": [{"name": n, **r} for n, r in rows.items()]})


if __name__ == "__main__":
    main()
