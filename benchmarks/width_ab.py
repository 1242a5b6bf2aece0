"""Issue 16's width A/B on a fixed budget: resnet18 with the full-resolution stem (the net
`benchmarks/stem_ab.py` picked, its variant C) at widths 40, 48 and 64, each trained with the
published recipe (recipes/fer2013_sgd.yaml) for the same epochs and seed. A wider net must
carry fewer test-time views to stay over 300 faces/s, so each row also has its int8 ONNX
model's val accuracy and one-thread batch-1 faces/s with flip and with flip + zooms.

    python benchmarks/width_ab.py [--epochs 15] [--work runs/stem_ab]

The w40 row is stem_ab's variant C (same recipe, epochs and seed): with the default --work
its run folder is shared and reused. Run on an otherwise idle machine (faces/s).
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from _common import ROOT, SHARED, classify_rates, write_result
from stem_ab import RECIPE, arg_parser, plot_curves, run_variants
from tta_views import SETS

sys.path.insert(0, str(ROOT / "src"))

NET = {"stem_stride": 1, "stage1_stride": 2, "crop": None}
VARIANTS = [("w40 (stem_ab's C)", "c_s1_stage2", {**NET, "width": 40}),
            ("w48", "w48_s1_stage2", {**NET, "width": 48}),
            ("w64", "w64_s1_stage2", {**NET, "width": 64})]
TTA_SETS = ("flip", "flip+scales")          # two of tta_views' fixed sets


def int8_figures(out: Path, repeats: int) -> dict:
    """The run's best.pt as an int8 ONNX model (512 train faces calibrate it, as a shipped
    int8 model): val accuracy and faces/s (1 thread, batch 1) under each TTA set. Cached in
    the run folder until best.pt changes."""
    cache = out / "int8.json"
    if cache.exists() and cache.stat().st_mtime >= (out / "best.pt").stat().st_mtime:
        return json.loads(cache.read_text())
    import numpy as np

    from ferkit.data import load_dataset
    from ferkit.io import write_json
    from ferkit.zoo.classify import OnnxClassifier
    from ferkit.zoo.export import export
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    from ferkit.zoo.tta import parse_views
    data = SHARED / "datasets" / "fer2013"
    val = load_dataset(data, "val", size=48, channels=1)
    fp32, int8 = out / "model.onnx", out / "model_int8.onnx"
    export(out / "best.pt", fp32, parity_images=val.images[:256], evaluate_val=False)
    quantize_model(fp32, int8, calibration_faces(data, fp32, n=512, seed=0),
                   calib_source=str(data))
    clf = OnnxClassifier(int8, threads=1)
    x = clf.preprocess(list(val.images))
    y, res = np.asarray(val.labels), {}
    for name in TTA_SETS:
        clf.tta, clf.views = SETS[name][0], parse_views(SETS[name][1])
        acc = float((clf.logits(x).argmax(1) == y).mean())
        res[name] = {"passes": 2 * (1 + len(clf.views)), "val_accuracy": acc,
                     "faces_per_s": statistics.median(classify_rates(clf, x, 1, repeats))}
    write_json(cache, res)
    return res


def main():
    ap = arg_parser(VARIANTS)
    ap.add_argument("--repeats", type=int, default=7, help="speed repeats per TTA set")
    args = ap.parse_args()
    rows, base, complete = run_variants(VARIANTS, args,
                                        lambda out: {"int8": int8_figures(out, args.repeats)})
    if complete:
        plot_curves(rows, ROOT / "docs" / "img" / "width_ab.png",
                    "Width A/B: resnet18, full-resolution stem, recipes/fer2013_sgd.yaml")
        write_result("width_ab", {"setup": {"recipe": str(RECIPE.relative_to(ROOT)),
                                            "epochs": args.epochs, "seed": base["seed"]},
                                  "rows": rows})


if __name__ == "__main__":
    main()
