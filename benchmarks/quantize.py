"""int8 against float for the shipped 7-class models, in one run on the same machine:
val accuracy (flip TTA as the cards say, and single pass), ECE, and faces/s at batch 1 and
64 on 1 thread (median of repeats, the same timing as classify_speed.py). The int8 models
are calibrated on 512 seeded FER2013 train faces (`ferkit quantize`), once per way of
setting the activation ranges (--calibrations, default minmax and percentile), and written
under --work, not shipped.

    python benchmarks/quantize.py [--models default_fp32 fast] [--calibrations minmax percentile]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import ROOT, SHARED, classify_throughput, write_result

sys.path.insert(0, str(ROOT / "src"))


def speed(model, faces, repeats: int) -> dict:
    from ferkit.zoo.classify import OnnxClassifier
    clf = OnnxClassifier(model, threads=1, tta=False)
    x = clf.preprocess(faces)
    return {f"faces_per_s_1thread_batch{b}": classify_throughput(clf, x, b, repeats)
            for b in (1, 64)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["default_fp32", "fast"])
    ap.add_argument("--work", default=str(ROOT / "runs" / "quantize"))
    ap.add_argument("--n", type=int, default=512, help="calibration faces")
    ap.add_argument("--calibrations", nargs="+", default=["minmax", "percentile"])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    from ferkit.data import load_dataset
    from ferkit.evaluation.evaluate import evaluate
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    from ferkit.zoo.shipped import resolve

    data = SHARED / "datasets" / "fer2013"
    faces = load_dataset(data, "val").images[:512]
    rows = []
    calib_by_shape = {}                 # the train split is read once per input size
    for name in args.models:
        card = resolve(name).card
        shape = (card["input_size"], card["channels"])
        if shape not in calib_by_shape:
            calib_by_shape[shape] = calibration_faces(data, name, n=args.n, seed=0)
        calib = calib_by_shape[shape]
        variants = [("float32", name, resolve(name).path)]   # (label, model, its ONNX file)
        for cal in args.calibrations:
            out = Path(args.work) / f"{name}_int8_{cal}.onnx"
            quantize_model(name, out, calib, calibration=cal,
                           calib_source=str(data.relative_to(SHARED)))
            variants.append((f"int8 {cal}", out, out))
        for label, model, onnx_file in variants:
            row = {"model": name, "precision": label}
            for tta in (True, False):
                rep = evaluate(data, model, tta=tta)
                key = "tta" if tta else "single"
                row[key] = {k: rep[k] for k in ("accuracy", "macro_f1", "ece", "tta")}
            row.update(speed(model, faces, args.repeats))
            row["onnx_bytes"] = Path(onnx_file).stat().st_size
            rows.append(row)
            print(row, flush=True)
    for q in rows:
        if q["precision"] == "float32":
            continue
        f = next(r for r in rows if r["model"] == q["model"] and r["precision"] == "float32")
        q["speedup_batch1"] = q["faces_per_s_1thread_batch1"] / f["faces_per_s_1thread_batch1"]
        q["speedup_batch64"] = q["faces_per_s_1thread_batch64"] / f["faces_per_s_1thread_batch64"]
        q["accuracy_change_tta"] = q["tta"]["accuracy"] - f["tta"]["accuracy"]
    write_result("quantize", {"rows": rows, "calibration_faces": args.n,
                              "calibrations": args.calibrations,
                              "note": "speed: single pass, 1 ORT thread; accuracy on FER2013 val"})


if __name__ == "__main__":
    main()
