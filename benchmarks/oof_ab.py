"""Issue 16's A/B from scratch on the cross-fitted targets: the fold recipe (resnet18 w40,
60-epoch cosine, EMA over the last quarter, seed 7) on all the train faces, with the
out-of-fold targets (recipes/fer2013_oof_ab.yaml) and on the labels alone
(recipes/fer2013_oof_ab_plain.yaml). The rule, fixed before the plain arm ran: the long
w56 student from scratch is started only if the targets' arm leads both at its best epoch
and over the mean of the last ten epochs. The two best checkpoints are also compared face
by face on val (McNemar's exact test on the faces exactly one of them gets right).

    python benchmarks/oof_ab.py [--a runs/ab/oof_w40] [--b runs/ab/plain_w40]

Writes benchmarks/results/oof_ab.json and docs/img/oof_ab_curves.png. Any other 60-epoch
arm of the fold recipe compares with the plain one the same way (--a RUN --a-label ...
--title ... --out NAME). A run folder without best.pt (once runs/ is gone) is read from
its history alone (--a-history .carry/ab/oof_w40_history.csv --b-history
.carry/ab/plain_w40_history.csv), without the paired test. An arm stopped early is shown
against the other's first epochs with --upto N: figures and curves at equal epochs, no
verdict and no paired test (the best checkpoints would be from different epochs).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))

LAST = 10


def read_history(path: Path) -> list[float]:
    """Val accuracy (flip TTA, the weights the run would keep) of every epoch, in order."""
    with open(path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["epoch"]))
    return [float(r["val_acc"]) for r in rows]


def arm_figures(curve: list[float]) -> dict:
    best = max(range(len(curve)), key=curve.__getitem__)
    return {"epochs": len(curve), "best_val": curve[best], "best_epoch": best + 1,
            f"mean_last_{LAST}": sum(curve[-LAST:]) / LAST, "final_val": curve[-1],
            "curve": curve}


def paired_val(a: Path, b: Path) -> dict:
    """Both runs' best.pt on FER2013 val with flip, face by face."""
    import numpy as np
    import torch
    from ensemble_val import probabilities

    from ferkit.data import load_dataset
    from ferkit.evaluation.evaluate import paired_accuracy
    from ferkit.train.loop import images_to_tensor
    torch.set_num_threads(2)
    val = load_dataset(SHARED / "datasets" / "fer2013", "val")
    x, y = images_to_tensor(val.images), np.asarray(val.labels)
    right = {k: probabilities(str(p / "best.pt"), x)[1].argmax(1).numpy() == y
             for k, p in (("a", a), ("b", b))}
    paired = paired_accuracy(right["a"], right["b"])     # McNemar's exact test, as ferkit compare
    return {"val_faces": len(y), "best_a": paired["accuracy_a"], "best_b": paired["accuracy_b"],
            "only_a_right": paired["only_a_right"], "only_b_right": paired["only_b_right"],
            "p_value": paired["mcnemar_p"]}


def plot(a: dict, b: dict, labels: tuple[str, str], title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ferkit.io import atomic_path
    fig, (top, diff) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                    gridspec_kw={"height_ratios": [3, 2]})
    for arm, label in zip((a, b), labels):
        top.plot(range(1, arm["epochs"] + 1), arm["curve"], label=label)
    top.set(ylabel="val accuracy (flip TTA)", title=title)
    top.legend()
    n = min(a["epochs"], b["epochs"])
    d = [100 * (a["curve"][i] - b["curve"][i]) for i in range(n)]
    diff.bar(range(1, n + 1), d, color=["tab:blue" if v >= 0 else "tab:orange" for v in d])
    diff.axhline(0, color="k", lw=0.8)
    diff.set(xlabel="epoch", ylabel="A - B (points)")
    for ax in (top, diff):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", default="runs/ab/oof_w40", help="the targets' run folder")
    ap.add_argument("--b", default="runs/ab/plain_w40", help="the plain run folder")
    ap.add_argument("--a-history", help="arm A's history.csv, where its run folder is gone")
    ap.add_argument("--b-history", help="arm B's history.csv, where its run folder is gone")
    ap.add_argument("--a-label", default="A: half out-of-fold targets")
    ap.add_argument("--b-label", default="B: labels only")
    ap.add_argument("--title", default="From scratch, resnet18 w40, 60 epochs: "
                    "out-of-fold targets or not")
    ap.add_argument("--out", default="oof_ab",
                    help="names benchmarks/results/OUT.json and docs/img/OUT_curves.png")
    ap.add_argument("--upto", type=int,
                    help="an unfinished arm: compare the first UPTO epochs only, no verdict")
    args = ap.parse_args()
    if args.upto is not None and args.upto < LAST:
        ap.error(f"--upto must be at least {LAST} (the figures average the last {LAST} epochs)")
    a_dir, b_dir = ROOT / args.a, ROOT / args.b
    a = arm_figures(read_history(Path(args.a_history or a_dir / "history.csv"))[:args.upto])
    b = arm_figures(read_history(Path(args.b_history or b_dir / "history.csv"))[:args.upto])
    if a["epochs"] != b["epochs"]:
        raise SystemExit(f"the arms ran {a['epochs']} and {b['epochs']} epochs: finish both")
    key = f"mean_last_{LAST}"
    leads = None if args.upto else a["best_val"] > b["best_val"] and a[key] > b[key]
    result = {"arms": {"a": {"label": args.a_label, "run": args.a, **a},
                       "b": {"label": args.b_label, "run": args.b, **b}},
              "rule": f"A leads at its best epoch and over the mean of the last {LAST} epochs",
              "a_leads": leads,
              "epochs_a_ahead": sum(x > y for x, y in zip(a["curve"], b["curve"]))}
    if args.upto:
        result["partial"] = f"the first {args.upto} epochs of both arms only: no verdict"
    elif (a_dir / "best.pt").exists() and (b_dir / "best.pt").exists():
        result["paired_val"] = paired_val(a_dir, b_dir)
    plot(a, b, (args.a_label, args.b_label), args.title,
         ROOT / "docs" / "img" / f"{args.out}_curves.png")
    write_result(args.out, result)
    print(f"A best {a['best_val']:.4f} (epoch {a['best_epoch']}), last {LAST} {a[key]:.4f}; "
          f"B best {b['best_val']:.4f} (epoch {b['best_epoch']}), last {LAST} {b[key]:.4f}; "
          f"A leads: {'not judged (--upto)' if leads is None else leads}")


if __name__ == "__main__":
    main()
