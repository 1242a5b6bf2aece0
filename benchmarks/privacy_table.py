"""Issue 4's table: FER2013 val accuracy at epsilon = 1, 3, 8 and non-private, for DP-SGD
from scratch and for the two-stage recipe, with time per epoch, and the membership-
inference audit of every model: loss threshold, offline LiRA with shadow models, and
difficulty calibration against the public stage-one model (which a two-stage attacker has),
each AUC with its 95% interval.

Train is split in two stratified, seeded halves: a "public" half (stage one of the
two-stage recipe, and the shadow models' reference set) and a "private" half (what every
row trains on privately; members for the audit). Non-members: FER2013 val.
Every run is kept under --work and skipped when its summary exists, so the script resumes.

    python benchmarks/privacy_table.py [--work runs/privacy]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import ROOT, fer2013, stratified_split, write_result

sys.path.insert(0, str(ROOT / "src"))

AUG = {"rotate": 10.0, "scale": 0.1, "shift": 0.1, "erase_p": 0.25}


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / "runs" / "privacy"))
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=15, help="non-private runs from scratch")
    ap.add_argument("--stage-one-epochs", type=int, default=40,
                    help="the public stage one of the two-stage recipe, trained as long as the "
                    "converged scratch row, so that stage two starts from a finished model")
    ap.add_argument("--dp-epochs", type=int, default=30, help="DP-SGD from scratch")
    # DP-SGD from scratch needs its own recipe: the noise added to each step grows with the
    # square root of the number of trained parameters and shrinks with the batch, and Adam's
    # per-coordinate scaling amplifies noise-dominated coordinates. So: a narrower network
    # (w8: 78k parameters, a quarter of w16), momentum SGD at a large learning rate on the
    # clipped mean gradient, logical batches of 1024, a cosine schedule, more epochs.
    ap.add_argument("--dp-width", type=int, default=8)
    ap.add_argument("--dp-batch", type=int, default=1024)
    ap.add_argument("--dp-lr", type=float, default=2.0)
    ap.add_argument("--multiplicity", type=int, default=4,
                    help="augmentation multiplicity K for extra DP-from-scratch rows (1: none)")
    ap.add_argument("--multiplicity-epsilons", type=float, nargs="*", default=[1.0, 3.0, 8.0])
    ap.add_argument("--ft-epochs", type=int, default=8, help="stage two (DP or not)")
    ap.add_argument("--trainable", default="last-block", choices=["all", "last-block", "head"])
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    ap.add_argument("--audit-n", type=int, default=None,
                    help="members and non-members per side (default: all of val, 3,589)")
    ap.add_argument("--shadows", type=int, default=4)
    ap.add_argument("--converged-epochs", type=int, default=40,
                    help="an extra non-private scratch row, same recipe, trained as long as a "
                    "user without a privacy budget would (0: skip)")
    ap.add_argument("--overfit-epochs", type=int, default=30,
                    help="an extra non-private row trained without augmentation or "
                    "regularisation until it memorises (0: skip)")
    return ap.parse_args(argv)


# stage two under DP: AdamW on the public model's last block, cosine per epoch
TWO_STAGE = {"batch_size": 512, "lr": 1e-3, "label_smoothing": 0.0, "schedule": "cosine",
             "warmup_epochs": 0.0}


def scratch_recipe(args) -> dict:
    """DP-SGD from scratch: narrow network, momentum SGD at a large lr, big logical batches."""
    return {"width": args.dp_width, "batch_size": args.dp_batch, "optimizer": "sgd",
            "lr": args.dp_lr, "momentum": 0.9, "weight_decay": 0.0, "label_smoothing": 0.0,
            "schedule": "cosine", "warmup_epochs": 1.0}


class Runs:
    """Trains each run of the table under ``work``, or finds it when its summary exists."""

    def __init__(self, args, data, private, val):
        self.work, self.private, self.val = Path(args.work), private, val
        self.base = {"data": str(data), "model": "resnet_fast", "width": args.width,
                     "norm": "group", "batch_size": 256, "lr": 2e-3, "augment": AUG,
                     "threads": 2, "seed": 0}

    def np(self, name, split, **kw):
        from ferkit.train.config import TrainConfig
        from ferkit.train.trainer import Trainer
        out = self.work / name
        if not (out / "summary.json").exists():
            Trainer(TrainConfig.from_dict({**self.base, **kw}), out, splits=(split, self.val),
                    progress=False).fit()
        return out

    def dp(self, name, eps, epochs, recipe, **dpkw):
        from ferkit.train.config import TrainConfig
        from ferkit.train.private import DPConfig, train_private
        out = self.work / name
        if not (out / "summary.json").exists():
            cfg = TrainConfig.from_dict({**self.base, "epochs": epochs, **recipe})
            train_private(cfg, DPConfig(epsilon=eps, physical_batch=256, **dpkw), out,
                          progress=False, splits=(self.private, self.val))
        return out


def np_plan(args, runs, pub, tag):
    """The non-private rows: (epsilon, recipe label, run thunk), and the run names that the
    DP rows of each recipe are compared with. Each DP row is compared, on the same faces,
    with the non-private rows of its recipe like-for-like: the DP two-stage recipe trained
    without DP (same optimiser, batch, label smoothing, schedule and epochs), so that only
    clipping and noise differ. (DP from scratch has no such row: its SGD at lr 2 is tuned
    for clipped mean gradients, and without clipping it diverges to a constant predictor.)"""
    private = runs.private

    def two_stage(trainable):
        return lambda: runs.np(f"np_two_stage_{trainable}_{tag}", private, epochs=args.ft_epochs,
                               lr=1e-3, warmup_epochs=0.0, init_from=str(pub / "best.pt"),
                               trainable=trainable)
    np_dp_two_stage = f"np_two_stage_{args.trainable}_{tag}_dp_recipe"
    scratch_runs = ["np_scratch"] + ([f"np_scratch_{args.converged_epochs}ep"]
                                     if args.converged_epochs else [])
    two_stage_runs = [f"np_two_stage_{t}_{tag}" for t in dict.fromkeys([args.trainable, "all"])]
    two_stage_runs.append(np_dp_two_stage)
    plan = [("non-private", "scratch", lambda: runs.np("np_scratch", private, epochs=args.epochs)),
            ("non-private", "two-stage", two_stage(args.trainable))]
    if args.trainable != "all":                 # what fine-tuning every layer would give
        plan.append(("non-private", "two-stage, all layers", two_stage("all")))
    plan.append(("non-private", "two-stage, the DP row's recipe", lambda: runs.np(
        np_dp_two_stage, private, epochs=args.ft_epochs, init_from=str(pub / "best.pt"),
        trainable=args.trainable, **TWO_STAGE)))
    return plan, {"scratch": scratch_runs, "two-stage": two_stage_runs}


def dp_plan(args, runs, pub, tag):
    """The DP rows: from scratch and two-stage at each epsilon, then with K views per face."""
    scratch, w = scratch_recipe(args), args.dp_width
    plan = []
    for eps in args.epsilons:
        plan.append((eps, f"scratch (w{w}, SGD)", lambda e=eps: runs.dp(
            f"dp_scratch_w{w}_eps{e:g}", e, args.dp_epochs, scratch)))
        plan.append((eps, "two-stage", lambda e=eps: runs.dp(
            f"dp_two_stage_{tag}_eps{e:g}", e, args.ft_epochs, TWO_STAGE,
            trainable=args.trainable, init_from=str(pub / "best.pt"))))
    if args.multiplicity > 1:                   # De et al. 2022: K views per face
        k = args.multiplicity
        for eps in args.multiplicity_epsilons:
            plan.append((eps, f"scratch (w{w}, SGD, K={k})", lambda e=eps: runs.dp(
                f"dp_scratch_w{w}_k{k}_eps{e:g}", e, args.dp_epochs, scratch,
                aug_multiplicity=k)))
    return plan


def extra_plan(args, runs):
    """Longer and memorising non-private rows, and the shipped default model (its members
    drawn from the private half are members of its training set too)."""
    plan = []
    if args.converged_epochs:
        plan.append(("non-private", f"scratch, {args.converged_epochs} epochs",
                     lambda: runs.np(f"np_scratch_{args.converged_epochs}ep", runs.private,
                                     epochs=args.converged_epochs)))
    if args.overfit_epochs:
        plan.append(("non-private", f"scratch, {args.overfit_epochs} epochs, no augmentation",
                     lambda: runs.np("np_overfit", runs.private, epochs=args.overfit_epochs,
                                     label_smoothing=0.0, weight_decay=0.0, dropout=0.0,
                                     augment={"flip": False, "rotate": 0.0, "scale": 0.0,
                                              "shift": 0.0, "erase_p": 0.0})))
    plan.append(("non-private", "shipped default model (all train)", lambda: None))
    return plan


def table_row(eps, recipe, out, audit) -> dict:
    """One row of the table: the run's accuracy, cost and privacy, and its audit."""
    row = {"epsilon": eps, "recipe": recipe,
           "audit": {k: {m: v[m] for m in ("auc", "auc_ci95", "accuracy", "tpr_at_1pct_fpr",
                                           "tpr_at_0.1pct_fpr")}
                     for k, v in audit["attacks"].items()},
           "n_members": audit["n_members"], "member_accuracy": audit["member_accuracy"],
           "non_member_accuracy": audit["non_member_accuracy"]}
    if out is None:
        from ferkit.zoo.shipped import resolve
        row.update(run="assets/default.onnx",
                   val_accuracy=resolve("default").card["metrics"]["val"]["accuracy"])
        return row
    s = json.loads((out / "summary.json").read_text())
    hist = json.loads((out / "history.json").read_text())
    privacy = s.get("privacy") or {}
    row.update(run=out.name, val_accuracy=s["val_report"]["accuracy"],
               val_macro_f1=s["val_report"]["macro_f1"], epochs=len(hist),
               seconds_per_epoch=float(np.median([h["seconds"] for h in hist])),
               epsilon_spent=privacy.get("epsilon"), delta=privacy.get("delta"),
               noise_multiplier=privacy.get("noise_multiplier"),
               dp_bound_auc=(audit.get("dp_bound") or {}).get("auc_max"))
    return row


def add_comparisons(rows, reports, counterparts):
    """DeLong's paired test on every DP row: each non-private counterpart's AUC minus its."""
    from ferkit.privacy.audit import compare_audits
    for row in rows:
        if row["epsilon"] == "non-private":
            continue
        names = counterparts["two-stage" if row["recipe"] == "two-stage" else "scratch"]
        row["non_private_minus_this"] = {
            name: {att: {k: c[k] for k in ("difference", "ci95", "p_value")}
                   for att, c in compare_audits(reports[name], reports[row["run"]])["attacks"].items()}
            for name in names}


def main():
    args = parse_args()
    from ferkit.privacy.audit import audit_arrays
    work = Path(args.work)
    data, train, val = fer2013()
    pub_idx, priv_idx = stratified_split(train.labels, 0, lambda n: n // 2)
    public, private = train.subset(pub_idx), train.subset(priv_idx)
    runs = Runs(args, data, private, val)
    t0 = time.time()
    s1 = args.stage_one_epochs
    pub = runs.np("public_stage1" if s1 == 15 else f"public_stage1_{s1}ep", public, epochs=s1)
    tag = f"s{s1}_ft{args.ft_epochs}"           # stage-two runs depend on both lengths
    plan, counterparts = np_plan(args, runs, pub, tag)
    plan += dp_plan(args, runs, pub, tag) + extra_plan(args, runs)
    shadow_recipe = {"norm": "group", "width": args.width, "epochs": args.epochs,
                     "augment": AUG, "batch_size": 256}
    rows, reports = [], {}
    for eps, recipe, fn in plan:
        out = fn()
        target, plots = (out / "best.pt", out / "audit") if out else ("default",
                                                                      work / "default_audit")
        audit = audit_arrays(target, private, val, n=args.audit_n, seed=0, reference=public,
                             shadow_models=args.shadows, shadow_recipe=shadow_recipe,
                             workdir=work / "shadows", plots=plots,
                             reference_model=pub / "best.pt", keep_scores=True)
        reports[out.name if out else "default"] = audit
        rows.append(table_row(eps, recipe, out, audit))
        print(json.dumps(rows[-1]), flush=True)
    add_comparisons(rows, reports, counterparts)
    pub_s = json.loads((pub / "summary.json").read_text())
    write_result("privacy_table", {
        "setup": {"model": f"resnet_fast w{args.width} GroupNorm", "public_half": len(public),
                  "private_half": len(private), "val": len(val), "trainable_stage_two": args.trainable,
                  "epochs_scratch": args.epochs, "epochs_dp_scratch": args.dp_epochs,
                  "dp_scratch_recipe": scratch_recipe(args), "dp_two_stage_recipe": TWO_STAGE,
                  "epochs_stage_one": s1, "epochs_stage_two": args.ft_epochs,
                  "reference_model": os.path.relpath(pub / "best.pt", ROOT),
                  "audit_n": rows[0]["n_members"],
                  "shadow_models": args.shadows, "threads": 2},
        "stage_one_val_accuracy": pub_s["val_report"]["accuracy"],
        "rows": rows, "wall_seconds": time.time() - t0})


if __name__ == "__main__":
    main()
