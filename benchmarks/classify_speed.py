"""Classification throughput of every shipped model through ONNX Runtime, with the TTA
its card ships with (flip or none): faces/s at batch 1 and 64, 1 and 2 threads, on real
FER2013 val faces (median of repeats, with the 10th and 90th percentiles: this shared
machine's speed drifts, so the spread is part of the figure).

    python benchmarks/classify_speed.py [--update-cards] [--out classify_speed]

`--out` names the result file, so that a second CPU's figures sit beside the first's
(`--out classify_speed_amd` on an AMD EPYC); the model cards take `--update-cards` figures
from the reference machine only.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from _common import ROOT, SHARED, classify_rates, write_result

sys.path.insert(0, str(ROOT / "src"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update-cards", action="store_true",
                    help="store the 1-thread batch-64 figure in each shipped model card")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default="classify_speed", help="result file name (no .json)")
    args = ap.parse_args()
    from ferkit.data import load_dataset
    from ferkit.io import write_json
    from ferkit.zoo.classify import OnnxClassifier
    from ferkit.zoo.shipped import shipped

    faces = load_dataset(SHARED / "datasets/fer2013", "val").images[:512]
    rows = []
    for ref in shipped():
        for threads in (1, 2):
            clf = OnnxClassifier(ref, threads=threads)          # the card's TTA
            x = clf.preprocess(faces)
            for batch in (1, 64):
                rates = classify_rates(clf, x, batch, args.repeats)
                fps = statistics.median(rates)
                p10, p90 = np.percentile(rates, [10, 90])
                row = {"model": ref.name, "tta": clf.tta_name,
                       "threads": threads, "batch": batch,
                       "faces_per_s": fps, "faces_per_s_p10": p10, "faces_per_s_p90": p90,
                       "ms_per_face": 1000 / fps}
                rows.append(row)
                print(row, flush=True)
        if args.update_cards:
            card = dict(ref.card)
            sp = {f"faces_per_s_{r['threads']}thread_batch{r['batch']}": round(r["faces_per_s"], 1)
                  for r in rows if r["model"] == ref.name}
            tta = clf.tta_name                  # the card's TTA, as every row of this model
            card["speed"] = {**sp, "note": f"ONNX Runtime CPU, TTA: {tta} (as shipped), "
                             "benchmarks/classify_speed.py"}
            write_json(ref.path.with_suffix(".json"), card)
    write_result(args.out, {"rows": rows, "note": "each model with the TTA it ships "
                                    "with (column tta); a flip doubles the work per face, and each "
                                    "extra view adds two more passes"})


if __name__ == "__main__":
    main()
