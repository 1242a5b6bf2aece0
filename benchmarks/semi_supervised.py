"""Issue 5's semi-supervised protocol on FER2013: keep 10% of train labelled (stratified,
seeded), hide the labels of the other 90%, and report val accuracy of
(a) supervised on the 10%, (b) pseudo-labelling rounds started from (a), (c) supervised on
100%, plus how pure each round's pseudo-labels were against the hidden labels (measured
only, never used for selection). Runs are kept under --work and reused.

    python benchmarks/semi_supervised.py [--variants threshold_0.95 curriculum_0.2 ...]

Variants (PseudoConfig options, see ferkit/train/pseudo_label.py): the classic absolute
threshold on the raw or the temperature-scaled MC mean, curriculum selection (the top
r*20% of each predicted class in round r) with hard or soft pseudo-labels, noisy students;
and online pseudo-labels (FixMatch, ferkit/train/fixmatch.py), per epoch.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import yaml
from _common import ROOT, fer2013, stratified_split, write_result

sys.path.insert(0, str(ROOT / "src"))

RECIPE = {"model": "resnet_fast", "width": 16, "batch_size": 128, "lr": 2e-3,
          "label_smoothing": 0.1, "threads": 2, "seed": 0,
          "augment": {"rotate": 10.0, "scale": 0.1, "shift": 0.1, "erase_p": 0.25}}
# the noisy student's stronger augmentation and warm-up (ferkit pseudo-label --recipe)
NOISY = yaml.safe_load((ROOT / "recipes" / "noisy_student.yaml").read_text())
VARIANTS = {
    "threshold_0.95_raw": {"threshold": 0.95, "calibrate": False},
    "threshold_0.8_raw": {"threshold": 0.8, "calibrate": False},
    "threshold_0.7_raw": {"threshold": 0.7, "calibrate": False},
    "threshold_0.95": {"threshold": 0.95},
    "curriculum_0.2": {"curriculum": 0.2},
    "curriculum_0.2_soft": {"curriculum": 0.2, "soft": True},
    "curriculum_0.2_restart": {"curriculum": 0.2, "restart": True},
    # noisy student: every unlabelled face with its calibrated MC-mean distribution, a full
    # learning rate, more epochs and stronger augmentation than the teacher had
    "noisy_student_soft": {"curriculum": 1.0, "soft": True, "max_mutual_info": 10.0,
                           "lr_factor": 1.0, "epochs_per_round": 12, "rounds": 4,
                           "recipe": NOISY},
    # the same with mixup on the merged batches: mixing two faces and their (soft) labels is
    # known to make training robust to wrong labels (Zhang et al. 2018), and about half of
    # these pseudo-labels are wrong
    "noisy_student_mixup": {"curriculum": 1.0, "soft": True, "max_mutual_info": 10.0,
                            "lr_factor": 1.0, "epochs_per_round": 12, "rounds": 3,
                            "recipe": {**NOISY, "augment": {**NOISY["augment"], "mixup": 0.4,
                                                            "mix_p": 0.5}}},
    # the noisy student with twice the epochs per round: its val accuracy still rose from
    # round to round, as if each 12-epoch round stopped short
    "noisy_student_long": {"curriculum": 1.0, "soft": True, "max_mutual_info": 10.0,
                           "lr_factor": 1.0, "epochs_per_round": 24, "rounds": 5,
                           "recipe": NOISY},
}
# noisy-student rounds again, with the FixMatch model as the first teacher: a better
# teacher gives better soft pseudo-labels ("from": the run whose best model starts it)
VARIANTS["noisy_student_long+fixmatch_self+noisy_student"] = {
    **VARIANTS["noisy_student_long"], "rounds": 3, "from": "noisy_student_long+fixmatch_self"}


# online pseudo-labels (ferkit/train/fixmatch.py): FixMatch with distribution alignment and
# a fixed or a self-adaptive (FreeMatch) class threshold, bf16, from (a)
# ("from": a variant, of either kind, whose best model it starts from instead of (a))
FIXMATCH = {
    "fixmatch_fixed_0.8": {"threshold": 0.8, "thresholds": "fixed", "ema": 0.99, "lr": 1e-3},
    "fixmatch_self": {"thresholds": "self", "ema": 0.99, "lr": 1e-3},
    "noisy_student_long+fixmatch_self": {"thresholds": "self", "ema": 0.99, "lr": 1e-3,
                                         "from": "noisy_student_long"},
    # a second FixMatch stage from the first one's best model (a fresh cosine schedule)
    "noisy_student_long+fixmatch_self_x2": {"thresholds": "self", "ema": 0.99, "lr": 1e-3,
                                            "from": "noisy_student_long+fixmatch_self"},
    # FixMatch once more after the second noisy student
    "noisy_student_long+fixmatch_self+noisy_student+fixmatch_self": {
        "thresholds": "self", "ema": 0.99, "lr": 1e-3,
        "from": "noisy_student_long+fixmatch_self+noisy_student"},
    # the same stage with another seed (batch order, augmentation): how much of its best
    # epoch is the draw
    "noisy_student_long+fixmatch_self+noisy_student+fixmatch_self_seed1": {
        "thresholds": "self", "ema": 0.99, "lr": 1e-3, "seed": 1,
        "from": "noisy_student_long+fixmatch_self+noisy_student"},
}


def gap_closed(a: dict, best: float, ref: dict | None) -> float | None:
    """Share of the gap from (a) to the reference ``ref`` that ``best`` closes."""
    if not ref or ref["val_accuracy"] <= a["val_accuracy"]:
        return None
    return (best - a["val_accuracy"]) / (ref["val_accuracy"] - a["val_accuracy"])


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / "runs" / "semi"))
    ap.add_argument("--share", type=float, default=0.10)
    ap.add_argument("--epochs-small", type=int, default=40, help="(a) on the labelled 10%%")
    ap.add_argument("--epochs-full", type=int, default=12, help="(c) on 100%%")
    ap.add_argument("--epochs-full-long", type=int, nargs="*", default=[36, 72, 144],
                    help="(c) again, trained longer: the pseudo-label rounds train far more "
                    "than --epochs-full epochs in all, so the gap is also reported against "
                    "the longest of these better-trained references (none: skip)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs-per-round", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--fixmatch", nargs="*", default=list(FIXMATCH), choices=list(FIXMATCH))
    ap.add_argument("--fixmatch-epochs", type=int, default=30)
    ap.add_argument("--class-cap", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=RECIPE["threads"])
    return ap.parse_args(argv)


def supervised(work: Path, recipe: dict, data, split, val, name: str, epochs: int):
    """Train (or reuse) one supervised run under ``work``: its directory and val figures."""
    from ferkit.train.config import TrainConfig
    from ferkit.train.trainer import Trainer
    out = work / name
    if not (out / "summary.json").exists():
        cfg = TrainConfig.from_dict({**recipe, "data": str(data), "epochs": epochs})
        Trainer(cfg, out, splits=(split, val), progress=False).fit()
    s = json.loads((out / "summary.json").read_text())
    return out, {"val_accuracy": s["val_report"]["accuracy"],
                 "val_macro_f1": s["val_report"]["macro_f1"], "train_faces": len(split),
                 "epochs": epochs, "train_seconds": s["train_seconds"]}


class Stages:
    """The (b) variants, each run (or reused) after the variant its options start it from,
    (a) where they name none; rows for the result in ``pseudo`` and ``online``."""

    def __init__(self, args, recipe: dict, data, lab, unl, val, a_dir: Path, refs: tuple):
        self.args, self.recipe, self.data = args, recipe, data
        self.lab, self.unl, self.val, self.a_dir = lab, unl, val, a_dir
        self.a, self.c, self.c_long = refs
        self.pseudo, self.online, self.done = {}, {}, {}

    def run(self, name: str) -> Path:
        """Run (or reuse) variant ``name`` after the variant it starts from; its directory."""
        if name in self.done:
            return self.done[name]
        opts = dict(VARIANTS[name] if name in VARIANTS else FIXMATCH[name])
        start = self.run(opts.pop("from")) / "best.pt" if "from" in opts else self.a_dir / "best.pt"
        out = self.done[name] = Path(self.args.work) / f"b_{name}"
        row, best = (self._pseudo_label if name in VARIANTS else self._fixmatch)(name, opts, start, out)
        row.update(best_val_accuracy=best, gap_closed=gap_closed(self.a, best, self.c),
                   gap_closed_vs_long=gap_closed(self.a, best, self.c_long))
        print(json.dumps({k: v for k, v in row.items() if k not in ("epochs", "rounds")}),
              flush=True)
        return out

    def _pseudo_label(self, name, opts, start, out):
        from ferkit.train.pseudo_label import PseudoConfig, pseudo_label_arrays, round_config
        args = self.args
        overrides = opts.pop("recipe", {})
        pc = PseudoConfig(**{"rounds": args.rounds, "class_cap": args.class_cap,
                             "epochs_per_round": args.epochs_per_round, **opts})
        cfg = round_config(self.recipe, pc, overrides, name, data=str(self.data))
        # logged rounds with the same options are reused; only missing ones are trained
        r = pseudo_label_arrays(start, self.lab, self.unl, self.val, out, pc, progress=False, cfg=cfg)
        row = self.pseudo[name] = {"variant": name, "config": dataclasses.asdict(pc),
                                   "recipe_overrides": overrides,
                                   "start_model": os.path.relpath(start, ROOT),
                                   "start_val_accuracy": r["start"], "rounds": r["rounds"]}
        return row, max(x["val_accuracy"] for x in r["rounds"])

    def _fixmatch(self, name, opts, start, out):
        from ferkit.train.fixmatch import FixMatchConfig, fixmatch
        fc = FixMatchConfig(epochs=self.args.fixmatch_epochs, threads=self.args.threads, **opts)
        r = fixmatch(start, self.lab, self.unl, self.val, out, fc, progress=False)
        row = self.online[name] = {"variant": name, "config": dataclasses.asdict(fc),
                                   "start_model": os.path.relpath(start, ROOT),
                                   "start_val_accuracy": r["start"], "epochs": r["epochs"],
                                   "train_seconds": sum(e["seconds"] for e in r["epochs"])}
        return row, max(e["val_accuracy"] for e in r["epochs"])


def main():
    args = parse_args()
    work = Path(args.work)
    data, train, val = fer2013()
    lab_idx, unl_idx = stratified_split(train.labels, 0, lambda n: max(1, round(args.share * n)))
    lab, unl = train.subset(lab_idx), train.subset(unl_idx)      # unl.labels: hidden
    t0 = time.time()
    recipe = {**RECIPE, "threads": args.threads}
    a_dir, a = supervised(work, recipe, data, lab, val, "a_supervised_10pct", args.epochs_small)
    _, c = supervised(work, recipe, data, train, val, "c_supervised_100pct", args.epochs_full)
    c_longer = [supervised(work, recipe, data, train, val, f"c_supervised_100pct_{e}ep", e)[1]
                for e in sorted(args.epochs_full_long)]
    c_long = c_longer[-1] if c_longer else None
    stages = Stages(args, recipe, data, lab, unl, val, a_dir, (a, c, c_long))
    for name in [*args.variants, *args.fixmatch]:
        stages.run(name)
    write_result("semi_supervised", {
        "setup": {"labelled": len(lab), "unlabelled": len(unl), "share": args.share, "recipe": RECIPE,
                  "threads_for_rounds": args.threads,
                  "val": len(val)},
        "a_supervised_10pct": a, "c_supervised_100pct": c, "c_supervised_100pct_long": c_long,
        "c_supervised_100pct_longer": c_longer,
        "b_pseudo_label": list(stages.pseudo.values()), "b_fixmatch": list(stages.online.values()),
        "wall_seconds": time.time() - t0})


if __name__ == "__main__":
    main()
