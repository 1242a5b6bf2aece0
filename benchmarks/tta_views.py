"""Test-time augmentation sets compared on one model: FER2013 val accuracy, macro-F1 and
faces/s (1 ORT thread, batch 1) for each set of views, fixed in advance here (none, flip,
flip with one zoom in or out (the 4-pass sets a wider net can afford), flip
with two scales, two shifts, two rotations, and all of those together), so that the
comparison is not a search over view sets on val.

    python benchmarks/tta_views.py [--model default] [--repeats 9]
    python benchmarks/tta_views.py --model default_fp32 --accuracy-only   # pick a set, no JSON

``--accuracy-only`` skips the timings (so it may run beside a training run) and writes no
result file: it is for choosing a model's views before it is released and timed.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from _common import ROOT, SHARED, classify_rates, write_result

sys.path.insert(0, str(ROOT / "src"))

SETS = {                                  # name -> (flip, extra views as ferkit.zoo.tta text)
    "none": (False, ""),
    "flip": (True, ""),
    "flip+zoom_in": (True, "scale=1.1"),
    "flip+zoom_out": (True, "scale=0.9"),
    "flip+scales": (True, "scale=1.1;scale=0.9"),
    "flip+shifts": (True, "shift_x=0.04;shift_x=-0.04"),
    "flip+rotations": (True, "rotate=8;rotate=-8"),
    "flip+all": (True, "scale=1.1;scale=0.9;shift_x=0.04;shift_x=-0.04;rotate=8;rotate=-8"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--accuracy-only", action="store_true",
                    help="skip the timings and write no result file")
    args = ap.parse_args()
    from ferkit.data import load_dataset
    from ferkit.evaluation.metrics import classification_report
    from ferkit.zoo.classify import OnnxClassifier
    from ferkit.zoo.tta import parse_views

    clf = OnnxClassifier(args.model, threads=1)
    val = load_dataset(SHARED / "datasets/fer2013", "val", size=clf.size, channels=clf.channels)
    x = clf.preprocess(list(val.images))
    shipped_tta = clf.tta_name                  # before the loop below changes the views
    rows = []
    for name, (flip, views) in SETS.items():
        clf.tta, clf.views = flip, parse_views(views)
        rep = classification_report(clf.calibrated(clf.logits(x)), val.labels, val.classes)
        rows.append({"set": name, "tta": clf.tta_name, "passes": (1 + len(clf.views)) * (1 + flip),
                     "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"]})
        if not args.accuracy_only:
            rates = classify_rates(clf, x, 1, args.repeats)
            rows[-1].update({"faces_per_s_1thread_batch1": statistics.median(rates),
                             "faces_per_s_p10": float(np.percentile(rates, 10)),
                             "faces_per_s_p90": float(np.percentile(rates, 90))})
        print(rows[-1], flush=True)
    if not args.accuracy_only:
        write_result("tta_views", {"model": clf.ref.name, "shipped_tta": shipped_tta,
                                   "data": "fer2013 val", "n": len(val), "rows": rows})


if __name__ == "__main__":
    main()
