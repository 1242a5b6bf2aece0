"""Issue 6's ablation on FER2013 val: the same model, epochs and seed, one option at a time
on top of plain cross-entropy; accuracy, macro-F1 and wall time of each run. A second table
compares label-distribution schemes on FER+ (majority vote, soft targets = PLD/cross-entropy,
drawing labels from the votes, KL label-distribution learning), as the FER+ paper did.

    python benchmarks/ablation.py [--epochs 10] [--gan-samples runs/gan_samples]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))

BASE = {"model": "resnet_fast", "width": 16, "batch_size": 128, "lr": 2e-3, "threads": 2,
        "seed": 0, "label_smoothing": 0.0,
        "augment": {"rotate": 10.0, "scale": 0.1, "shift": 0.1, "erase_p": 0.25}}
FER_ROWS = [
    ("baseline cross-entropy", {}),
    ("label smoothing 0.1", {"label_smoothing": 0.1}),
    ("semantic embedding cosine loss", {"loss": "semantic"}),
    ("similarity-smoothed targets", {"loss": "semantic_smooth"}),
    ("attention consistency (flip CAMs)", {"attention_consistency": 1.0}),
    ("sample reweighting (hard 10% x0.3)", {"reweight": 0.1}),
]
FERPLUS_ROWS = [
    ("majority vote", {}),
    ("vote distribution, soft cross-entropy", {"soft_labels": True}),
    ("labels drawn from the votes", {"soft_labels": True, "loss": "sample"}),
    ("label-distribution learning (KL)", {"soft_labels": True, "loss": "kl"}),
]


def run(name: str, cfg_d: dict, work: Path) -> dict:
    from ferkit.train.config import TrainConfig
    from ferkit.train.trainer import Trainer
    out = work / name
    if not (out / "summary.json").exists():
        Trainer(TrainConfig.from_dict(cfg_d), out, progress=False).fit()
    s = json.loads((out / "summary.json").read_text())
    return {"val_accuracy": s["val_report"]["accuracy"], "val_macro_f1": s["val_report"]["macro_f1"],
            "best_epoch": s["best_epoch"], "wall_seconds": s["wall_seconds"],
            "train_seconds": s["train_seconds"], "run": str(out.relative_to(ROOT))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / "runs" / "ablation"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--ferplus-epochs", type=int, default=8)
    ap.add_argument("--gan-samples", help="folder from `ferkit gan sample` for the +GAN row")
    ap.add_argument("--only", choices=["fer2013", "ferplus"], default=None)
    args = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work = Path(args.work)
    fer = str(SHARED / "datasets" / "fer2013")
    ferplus = str(SHARED / "datasets" / "ferplus")
    result = {"setup": {**BASE, "epochs": args.epochs, "ferplus_epochs": args.ferplus_epochs}}
    if args.only in (None, "fer2013"):
        rows = FER_ROWS + ([("+ GAN samples", {"extra_data": args.gan_samples})]
                           if args.gan_samples else [])
        table = []
        for i, (label, extra) in enumerate(rows):
            r = run(f"fer{i}", {**BASE, "data": fer, "epochs": args.epochs, **extra}, work)
            table.append({"option": label, "config": extra, **r})
            print(json.dumps(table[-1]), flush=True)
        result["fer2013"] = table
    if args.only in (None, "ferplus"):
        table = []
        for i, (label, extra) in enumerate(FERPLUS_ROWS):
            r = run(f"ferplus{i}", {**BASE, "data": ferplus, "epochs": args.ferplus_epochs,
                                    "classes": "ferplus", **extra}, work)
            table.append({"scheme": label, "config": extra, **r})
            print(json.dumps(table[-1]), flush=True)
        result["ferplus"] = table
    name = "ablation" if args.only is None else f"ablation_{args.only}"
    write_result(name, result)


if __name__ == "__main__":
    main()
