"""Issue 16's A/B of the network's input resolution on a fixed budget: today's `default`
net (3x3 stem at stride 2, so the first stage sees 24 px) against a full-resolution stem,
with and without 40-px random-crop training (centre crop at test), all trained with the
published recipe (recipes/fer2013_sgd.yaml) for the same epochs and seed. Reports val
accuracy (flip TTA, best epoch and last epoch), MACs per face and training wall time.

    python benchmarks/stem_ab.py [--epochs 15] [--work runs/stem_ab]

Each variant trains in its own run folder and resumes from its last epoch when re-run.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))

RECIPE = ROOT / "recipes" / "fer2013_sgd.yaml"
VARIANTS = [
    ("A: stem stride 2, 48 px (today's default net)", "a_s2",
     {"stem_stride": 2, "stage1_stride": None, "crop": None}),
    ("B: full-resolution stem and stage 1, 40-px crops", "b_s1_crop40",
     {"stem_stride": 1, "stage1_stride": None, "crop": 40}),
    ("C: full-resolution stem only (stage 1 at stride 2), 48 px", "c_s1_stage2",
     {"stem_stride": 1, "stage1_stride": 2, "crop": None}),
    ("D: stem stride 2, 40-px crops", "d_s2_crop40",
     {"stem_stride": 2, "stage1_stride": None, "crop": 40}),
]


def run(cfg_d: dict, out: Path) -> dict:
    from ferkit.models import count_macs
    from ferkit.train.config import TrainConfig
    from ferkit.train.trainer import Trainer
    cfg = TrainConfig.from_dict(cfg_d)
    trainer = Trainer(cfg, out, resume=True, progress=False)
    if not (out / "summary.json").exists():
        trainer.fit()
    s = json.loads((out / "summary.json").read_text())
    hist = json.loads((out / "history.json").read_text())
    model = trainer._model(s["classes"])
    tencrop = _tencrop_accuracy(out, cfg) if cfg.crop else None
    return {"val_accuracy_best": s["val_report"]["accuracy"], "best_epoch": s["best_epoch"],
            "val_accuracy_tencrop": tencrop,
            "val_accuracy_last": hist[-1]["val_acc"], "val_macro_f1": s["val_report"]["macro_f1"],
            "macs_per_face": count_macs(model, cfg.input_size, cfg.channels),
            "params": sum(p.numel() for p in model.parameters()),
            "train_seconds": s["train_seconds"],
            "median_epoch_seconds": statistics.median(h["seconds"] for h in hist),
            "curve": [round(h["val_acc"], 4) for h in hist],
            "run": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)}


def _tencrop_accuracy(out: Path, cfg) -> float:
    """Val accuracy of the run's best.pt with ten-crop TTA (crop-trained variants only),
    cached in the run folder (ten passes over val are slow on a busy CPU)."""
    cache = out / "tencrop.json"
    if cache.exists() and cache.stat().st_mtime >= (out / "best.pt").stat().st_mtime:
        return json.loads(cache.read_text())["val_accuracy_tencrop"]
    import torch

    from ferkit.data import load_dataset
    from ferkit.train import checkpoint
    from ferkit.train.loop import images_to_tensor, tencrop_logits
    ck = checkpoint.load(out / "best.pt")
    model = checkpoint.build_from_checkpoint(ck)
    val = load_dataset(SHARED / "datasets" / "fer2013", "val", size=48, channels=1)
    mc = ck["model_config"]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        z = tencrop_logits(model, images_to_tensor(val.images), mc["mean"], mc["std"], cfg.crop)
    acc = float((z.argmax(1).numpy() == val.labels).mean())
    cache.write_text(json.dumps({"val_accuracy_tencrop": acc}))
    return acc


def plot_curves(rows: list[dict], path: Path,
                title: str = "Input-resolution A/B: resnet18 w40, recipes/fer2013_sgd.yaml") -> None:
    """Val accuracy per epoch of every variant, for the docs' benchmarks page."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ferkit.io import atomic_path
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        ax.plot(range(1, len(r["curve"]) + 1), r["curve"],
                label=f"{r['variant'].split(':')[0]} ({r['macs_per_face'] / 1e6:.0f} MMACs)")
    ax.set(xlabel="epoch", ylabel="val accuracy (flip TTA)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def arg_parser(variants) -> argparse.ArgumentParser:
    """The A/B scripts' common options (--work, --epochs, --only KEY,...)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / "runs" / "stem_ab"))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--only", help="comma list of variant keys "
                    f"({', '.join(key for _, key, _ in variants)})")
    return ap


def run_variants(variants, args, more=None) -> tuple[list[dict], dict, bool]:
    """Train (or reuse) each variant --only names (all by default) on the recipe's fixed
    budget; its rows (with ``more(run_folder)`` merged in), the base options, and whether
    every variant ran (only then is the result written)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from ferkit.train.config import load_recipe
    base = {**load_recipe(RECIPE), "data": str(SHARED / "datasets" / "fer2013"),
            "epochs": args.epochs}
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    for label, key, extra in variants:
        if wanted and key not in wanted:
            continue
        out = Path(args.work) / key
        r = run({**base, **extra}, out)
        rows.append({"variant": label, "key": key, "options": extra, **r,
                     **(more(out) if more else {})})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}), flush=True)
    return rows, base, not wanted


def main():
    args = arg_parser(VARIANTS).parse_args()
    rows, base, complete = run_variants(VARIANTS, args)
    if complete:
        plot_curves(rows, ROOT / "docs" / "img" / "stem_ab.png")
        write_result("stem_ab", {"setup": {"recipe": str(RECIPE.relative_to(ROOT)),
                                           "epochs": args.epochs, "seed": base["seed"]},
                                 "rows": rows})


if __name__ == "__main__":
    main()
