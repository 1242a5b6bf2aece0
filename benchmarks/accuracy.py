"""Val accuracy of every shipped model (FER2013 val for 7-class models, FER+ FER2013Valid
for the 8-class one), with and without flip TTA, and the wall time the default run took
to first reach 70% val accuracy (from its training history, if it got there; a run
fine-tuned from another run's checkpoint counts the earlier stages' epochs and time).

    python benchmarks/accuracy.py [--runs runs]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default=str(ROOT / "runs"), help="folder of training runs")
    args = ap.parse_args()
    from ferkit.evaluation.evaluate import evaluate
    from ferkit.zoo.shipped import shipped

    out = {"models": []}
    for ref in shipped():
        data = SHARED / "datasets" / ("ferplus" if len(ref.classes) == 8 else "fer2013")
        row = {"model": ref.name, "data": str(data.relative_to(SHARED)), "split": "val"}
        for tta in (False, True):
            rep = evaluate(data, ref, tta=tta)
            key = "tta" if tta else "single"      # "tta": the card's views (flip and more)
            row[key] = {k: rep[k] for k in ("n", "accuracy", "macro_f1", "balanced_accuracy",
                                            "per_class_accuracy_spread", "ece")}
            row[key]["views"] = rep["tta"]
        out["models"].append(row)
        print(json.dumps(row), flush=True)
    from ferkit.train.lineage import run_stages, time_to_accuracy
    out["time_to_70"] = {}
    for run in sorted(Path(args.runs).glob("*/history.json")):
        hist = json.loads(run.read_text())
        if not hist or not isinstance(hist, list) or "val_acc" not in hist[0]:
            continue                      # not a classifier run (e.g. a GAN)
        # a run started from another run's checkpoint counts that run's epochs and time too
        out["time_to_70"][run.parent.name] = time_to_accuracy(run_stages(run.parent), 0.70)
    write_result("accuracy", out)


if __name__ == "__main__":
    main()
