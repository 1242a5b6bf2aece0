"""Would per-class logit offsets fitted on FER2013 val raise a model's accuracy on faces they
were not fitted on? (Issue 16: a model 0.8 points under 72% could be pushed over it by offsets
tuned on val itself, which would say nothing about the withheld test set.) Val is split in
random halves; offsets (one per class, coordinate ascent on a grid, three sweeps) are fitted
on one half and scored on the other, both ways, for each of --splits seeds.

    python benchmarks/class_bias_cv.py [--model src/ferkit/assets/default_fp32.pt] [--splits 10]

Writes benchmarks/results/class_bias_cv.json: the held-out gain of each split, their mean and
median, and the in-sample gain of offsets fitted on all of val (what tuning on val would show).
"""
from __future__ import annotations

import argparse
import statistics
import sys

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))

GRID = [i / 20 for i in range(-30, 31)]        # -1.5 ... 1.5 in steps of 0.05


def fit_offsets(logp, y, sweeps: int = 3):
    import numpy as np
    b = np.zeros(logp.shape[1])
    for _ in range(sweeps):
        for c in range(len(b)):
            best_acc, best_v = ((logp + b).argmax(1) == y).mean(), b[c]
            for v in GRID:
                trial = b.copy()
                trial[c] = v
                acc = ((logp + trial).argmax(1) == y).mean()
                if acc > best_acc + 1e-12:
                    best_acc, best_v = acc, v
            b[c] = best_v
    return b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="src/ferkit/assets/default_fp32.pt")
    ap.add_argument("--splits", type=int, default=10)
    args = ap.parse_args()
    import numpy as np
    import torch
    from ensemble_val import probabilities

    from ferkit.data import load_dataset
    from ferkit.train.loop import images_to_tensor
    torch.set_num_threads(2)
    val = load_dataset(SHARED / "datasets" / "fer2013", "val")
    y = np.asarray(val.labels)
    _, p = probabilities(str(ROOT / args.model), images_to_tensor(val.images))
    logp = np.log(p.numpy() + 1e-9)
    rng, gains = np.random.default_rng(0), []
    for _ in range(args.splits):
        perm = rng.permutation(len(y))
        halves = perm[: len(y) // 2], perm[len(y) // 2:]
        for fit_on, score_on in (halves, halves[::-1]):
            b = fit_offsets(logp[fit_on], y[fit_on])
            acc = lambda off: float(((logp[score_on] + off).argmax(1) == y[score_on]).mean())  # noqa: E731
            gains.append(acc(b) - acc(0))
    b_all = fit_offsets(logp, y)
    base = float((logp.argmax(1) == y).mean())
    result = {"model": args.model, "tta": "flip", "val_faces": len(y), "val_accuracy": base,
              "held_out_gain_per_split": gains, "held_out_gain_mean": statistics.mean(gains),
              "held_out_gain_median": statistics.median(gains),
              "in_sample_accuracy": float(((logp + b_all).argmax(1) == y).mean()),
              "in_sample_offsets": dict(zip(val.classes, b_all.round(2).tolist()))}
    write_result("class_bias_cv", result)
    print(f"val {base:.4f}; held-out gain mean {result['held_out_gain_mean']:+.4f}, median "
          f"{result['held_out_gain_median']:+.4f}; in sample {result['in_sample_accuracy']:.4f}")


if __name__ == "__main__":
    main()
