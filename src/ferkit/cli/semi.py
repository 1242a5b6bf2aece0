"""`ferkit pseudo-label`: semi-supervised learning on unlabelled faces, in rounds (offline
pseudo-labels, MC-dropout certainty, class caps) or online (FixMatch with distribution
alignment and class-adaptive thresholds). Registered by cli.build_parser."""
from __future__ import annotations


def add_pseudo(sub) -> None:
    p = sub.add_parser("pseudo-label", help="semi-supervised learning on unlabelled faces",
                       description="rounds (default): label unlabelled faces with the model "
                       "(confident and certain under MC dropout, class-capped), merge, "
                       "fine-tune; repeat. fixmatch: remake the labels every step from a weak "
                       "view and train a strong view on the confident ones.")
    p.add_argument("--model", required=True, help="checkpoint (.pt) to start from")
    p.add_argument("--labeled", required=True)
    p.add_argument("--unlabeled", required=True, help="aligned faces (see ferkit preprocess)")
    p.add_argument("--val", help="val data (default: the checkpoint recipe's)")
    p.add_argument("--method", choices=["rounds", "fixmatch"], default="rounds")
    p.add_argument("--threshold", type=float, default=0.95)
    r = p.add_argument_group("rounds")
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--max-mutual-info", type=float, default=0.05)
    r.add_argument("--class-cap", type=float, default=0.3)
    r.add_argument("--mc-passes", type=int, default=10)
    r.add_argument("--epochs-per-round", type=int, default=5)
    r.add_argument("--lr-factor", type=float, default=0.3)
    r.add_argument("--no-calibrate", action="store_true",
                   help="select on the raw softmax, not the temperature-scaled one")
    r.add_argument("--curriculum", type=float, default=0.0, metavar="SHARE",
                   help="round r keeps the top r*SHARE of each predicted class (no threshold)")
    r.add_argument("--soft", action="store_true", help="train on pseudo-label distributions")
    r.add_argument("--restart", action="store_true",
                   help="each round fine-tunes the starting model, not the previous round's")
    r.add_argument("--recipe", metavar="FILE",
                   help="YAML/JSON training options for the rounds over the starting model's "
                   "recipe, e.g. recipes/noisy_student.yaml (augment merged key by key)")
    f = p.add_argument_group("fixmatch")
    f.add_argument("--epochs", type=int, default=40, help="passes over the unlabelled faces")
    f.add_argument("--mu", type=int, default=7, help="unlabelled faces per labelled face")
    f.add_argument("--batch-size", type=int, default=64, help="labelled faces per step")
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--ema", type=float, default=0.99)
    f.add_argument("--no-align", action="store_true", help="no distribution alignment")
    f.add_argument("--thresholds", choices=["self", "flex", "fixed"], default="self",
                   help="self: FreeMatch's self-adaptive class thresholds (follow the model's "
                   "confidence; --threshold unused); flex: FlexMatch's, scaled from "
                   "--threshold; fixed: --threshold for every class")
    f.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--no-progress", action="store_true")


def cmd_pseudo(a) -> int:
    if a.method == "fixmatch":
        return _fixmatch(a)
    from ferkit.train.pseudo_label import PseudoConfig, pseudo_label
    pc = PseudoConfig(a.rounds, a.threshold, a.max_mutual_info, a.class_cap, a.mc_passes,
                      a.epochs_per_round, a.lr_factor, calibrate=not a.no_calibrate,
                      curriculum=a.curriculum, soft=a.soft, restart=a.restart)
    overrides = None
    if a.recipe:
        from ferkit.train.config import load_recipe
        overrides = load_recipe(a.recipe)
    res = pseudo_label(a.model, a.labeled, a.unlabeled, a.out, pc, val=a.val,
                       progress=not a.no_progress, overrides=overrides, source=a.recipe)
    for r in res["rounds"]:
        print(f"round {r['round']}: kept {r['selected']}/{r['of']} {r['per_class']} "
              f"purity {r['purity']} val {r['val_accuracy']:.4f}")
    print(f"best: round {res['best']['round']} val {res['best']['val_accuracy']}")
    return 0


def _fixmatch(a) -> int:
    from ferkit.errors import ConfigError
    if a.recipe:
        raise ConfigError(f"{a.recipe}: --recipe sets the training options of --method "
                          f"rounds; FixMatch takes its own (--lr, --batch-size, --ema, ...)")
    from ferkit.train import checkpoint
    from ferkit.train.fixmatch import FixMatchConfig, fixmatch
    from ferkit.train.pseudo_label import load_semi_inputs
    fc = FixMatchConfig(epochs=a.epochs, batch_size=a.batch_size, mu=a.mu,
                        threshold=a.threshold, lr=a.lr, ema=a.ema, align=not a.no_align,
                        thresholds=a.thresholds, threads=a.threads)
    fc.validate()
    lab, unl, val = load_semi_inputs(checkpoint.load(a.model), a.labeled, a.unlabeled, a.val)
    res = fixmatch(a.model, lab, unl, val, a.out, fc, progress=not a.no_progress)
    for e in res["epochs"]:
        purity = "-" if e["purity"] is None else f"{e['purity']:.3f}"
        print(f"epoch {e['epoch']}: {e['selected']}/{e['of']} over the threshold "
              f"{e['per_class']} purity {purity} val {e['val_accuracy']:.4f}")
    best = res["best"]
    print(f"best: epoch {best['epoch']} val {best['val_accuracy']:.4f}"
          + ("" if best["epoch"] else " (the starting model: no best.pt written)"))
    return 0
