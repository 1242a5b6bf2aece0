"""Issue 16's FER+ models: the 48-px against the 64-px input A/B (recipes/ferplus_r18.yaml,
both trained side by side on a lent GPU by scripts/lease_train.py) and the 48-px model
fine-tuned with both as teachers (recipes/ferplus_r18_distill.yaml), then towards the 64-px
one alone (recipes/ferplus_r18_distill_s2.yaml). For each run: FER2013Valid
accuracy through ONNX Runtime in float32 and int8, with flip TTA and without, MACs per
face, faces/s on one thread at batch 1 for each (median of repeats; run it with the CPU
otherwise idle), training epochs and wall time, and a plot of the val curves.

    python benchmarks/ferplus_ab.py [--runs runs/ferplus_r18_48 runs/ferplus_r18_64 ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import ROOT, SHARED, classify_rates, write_result

sys.path.insert(0, str(ROOT / "src"))
DATA = SHARED / "datasets" / "ferplus"
RUNS = ["runs/ferplus_r18_48", "runs/ferplus_r18_64", "runs/ferplus_r18_distill",
        "runs/ferplus_r18_distill_s2"]


def onnx_rows(run: Path, work: Path, faces, repeats: int) -> dict:
    """Accuracy and 1-thread batch-1 speed of the run's best.pt as float32 and int8 ONNX."""
    from ferkit.evaluation.evaluate import evaluate
    from ferkit.zoo.classify import OnnxClassifier
    from ferkit.zoo.export import export
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    fp32 = work / f"{run.name}.onnx"
    export(run / "best.pt", fp32, name=run.name, evaluate_val=False)
    int8 = work / f"{run.name}_int8.onnx"
    quantize_model(fp32, int8, calibration_faces(DATA, fp32, n=512, seed=0))
    out = {}
    for kind, path in (("fp32", fp32), ("int8", int8)):
        for tta in ("flip", "none"):
            rep = evaluate(DATA, path, tta=tta == "flip")
            clf = OnnxClassifier(path, threads=1, tta=tta == "flip")
            rates = classify_rates(clf, clf.preprocess(faces), 1, repeats)
            out[f"{kind}_{tta}"] = {"val_accuracy": rep["accuracy"],
                                    "val_macro_f1": rep["macro_f1"],
                                    "faces_per_s_1thread_batch1": statistics.median(rates)}
            print(run.name, kind, tta, json.dumps(out[f"{kind}_{tta}"]), flush=True)
    return out


def run_row(run: Path) -> dict:
    from ferkit.models import count_macs
    from ferkit.train import checkpoint
    ck = checkpoint.load(run / "best.pt")
    hist = json.loads((run / "history.json").read_text())
    sessions = json.loads((run / "sessions.json").read_text())
    mc = ck["model_config"]
    net = checkpoint.build_from_checkpoint(ck)
    cfg = ck["config"]
    return {"run": str(run.relative_to(ROOT)), "input_size": mc["input_size"], "epochs_run": len(hist),
            "epochs_planned": cfg["epochs"], "best_epoch": ck["epoch"], "weights": ck["weights"],
            "val_accuracy_training": ck["val_report"]["accuracy"],
            "macs_per_face": count_macs(net, mc["input_size"], mc["in_chans"]),
            "wall_seconds": sum(s["wall_seconds"] for s in sessions),
            "hardware": "NVIDIA H200 (lent)" if (run / "LEASE.md").exists() else "2-core CPU",
            "distill": cfg.get("distill"), "init_from": cfg.get("init_from"),
            "curve": [round(h["val_acc"], 4) for h in hist]}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ferkit.io import atomic_path
    fig, ax = plt.subplots(figsize=(7, 4))
    end = {}                       # a fine-tuning run continues the curve of its init run
    for r in rows:
        start = end.get(str(Path(r["init_from"] or "").parent), 0)
        end[r["run"]] = start + len(r["curve"])
        ax.plot(range(start + 1, start + len(r["curve"]) + 1), r["curve"],
                label=f"{Path(r['run']).name} ({r['input_size']} px, "
                      f"{r['macs_per_face'] / 1e6:.0f} MMACs)")
    ax.axhline(0.86, color="grey", ls="--", lw=1, label="issue 16 target (0.86)")
    ax.set(xlabel="epoch", ylabel="FER2013Valid accuracy (flip TTA)", ylim=(0.75, 0.89),
           title="FER+: resnet18 w40 on vote distributions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", default=RUNS)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    from ferkit.data import load_dataset
    faces = load_dataset(DATA, "val").images[:512]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in args.runs:
            run = ROOT / r
            rows.append({**run_row(run), "onnx": onnx_rows(run, Path(tmp), faces, args.repeats)})
    plot(rows, ROOT / "docs" / "img" / "ferplus_ab.png")
    write_result("ferplus_ab", {"data": "FER2013Valid (../shared/datasets/ferplus, 3,555 "
                                "faces with a known majority)", "rows": rows})


if __name__ == "__main__":
    main()
