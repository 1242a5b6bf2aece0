"""`ferkit` command line: a thin shell over the Python API, one subcommand per job.

User mistakes print one clear line (``ferkit: error: ...``) and exit 2; no stack trace.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from ferkit import __version__
from ferkit.cli.analyze import add_analyze, cmd_analyze, cmd_preprocess
from ferkit.cli.semi import add_pseudo, cmd_pseudo
from ferkit.cli.serve import add_serve, cmd_serve, cmd_survey
from ferkit.cli.tools import (
    add_crossfit,
    add_explain,
    add_gan,
    add_prune,
    add_quantize,
    add_temporal,
    cmd_crossfit,
    cmd_explain,
    cmd_gan,
    cmd_prune,
    cmd_quantize,
    cmd_temporal,
)
from ferkit.cli.train import add_train, cmd_train
from ferkit.errors import FerkitError

log = logging.getLogger("ferkit")

# flag -> (TrainConfig key, type); None type means store_true
def cmd_evaluate(a) -> int:
    from ferkit.evaluation.evaluate import compare, evaluate
    from ferkit.io import write_json

    if a.compare_model:
        res = compare(a.data, a.model, a.compare_model, split=a.split,
                      tta=a.tta, threads=a.threads,
                      class_map=a.class_map, skip_bad=a.skip_bad, mc_dropout=a.mc_dropout)
        if a.json:
            write_json(a.json, res)
        p = res["paired"]
        lo, hi = p["ci95"]
        print(f"{res['a']['model_name']} {p['accuracy_a']:.4f} vs {res['b']['model_name']} "
              f"{p['accuracy_b']:.4f} on the same {p['n']} faces: difference "
              f"{p['difference']:+.4f} [{lo:+.4f}, {hi:+.4f}]; only the first right on "
              f"{p['only_a_right']}, only the second on {p['only_b_right']}; McNemar p = "
              f"{p['mcnemar_p']:.2g}")
        return 0
    rep = evaluate(a.data, a.model, split=a.split, tta=a.tta,
                   threads=a.threads, class_map=a.class_map, skip_bad=a.skip_bad,
                   plots=a.plots, mc_dropout=a.mc_dropout)
    if a.json:
        write_json(a.json, rep)
    pc = rep["per_class"]
    print(f"{rep['model_name']} on {rep['data']} (n={rep['n']}): accuracy {rep['accuracy']:.4f}"
          f"  macro-F1 {rep['macro_f1']:.4f}  balanced {rep['balanced_accuracy']:.4f}"
          f"  ECE {rep['ece']:.4f} (uncalibrated {rep['ece_uncalibrated']:.4f})  "
          f"acc@80% coverage {rep['accuracy_at_coverage']['0.8']:.4f}")
    for c, v in pc.items():
        print(f"  {c:>10s}  acc {v['accuracy']:.3f}  prec {v['precision']:.3f}  n {v['support']}")
    return 0


def cmd_calibrate(a) -> int:
    from ferkit.evaluation.evaluate import calibrate
    if a.bins < 0:
        raise FerkitError("--bins must be >= 0")
    b = calibrate(a.model, a.data, split=a.split, bins=a.bins)
    print(f"temperature {b['temperature']:.3f}: ECE {b['ece_before']:.4f} -> {b['ece_after']:.4f},"
          f" NLL {b['nll_before']:.4f} -> {b['nll_after']:.4f} on {b['n']} faces")
    if "ece_cross_fitted" in b:
        cf = b["ece_cross_fitted"]
        print(f"top-label map ({a.bins} bins): ECE {b['ece_after_map']:.4f} in sample; "
              f"{cf['folds']}-fold cross-fitted ECE: temperature {cf['temperature']:.4f}, "
              f"temperature + map {cf['temperature+top_label_map']:.4f}")
    return 0


def cmd_export(a) -> int:
    import numpy as np

    from ferkit.zoo.export import export
    images = None
    if a.parity_data:
        from ferkit.data import load_dataset
        from ferkit.train import checkpoint
        mc = checkpoint.load(a.checkpoint)["model_config"]
        images = load_dataset(a.parity_data, "val", size=mc["input_size"],
                              channels=mc["in_chans"]).images
        images = images[np.random.default_rng(0).permutation(len(images))[:256]]
    from ferkit.zoo.tta import parse_views
    card = export(a.checkpoint, a.out, name=a.name, parity_images=images,
                  slim_checkpoint=a.checkpoint_out, evaluate_val=not a.no_val,
                  tta_views=parse_views(a.tta_views) if a.tta_views else None,
                  half_weights=a.half_weights)
    print(f"wrote {a.out} and {a.out[:-5]}.json; parity max |dp| = "
          f"{card['parity_max_prob_diff']:.2e}")
    if "val" in card["metrics"]:
        print(f"val accuracy (ONNX) {card['metrics']['val']['accuracy']:.4f}")
    return 0


def cmd_models(a) -> int:
    from ferkit.zoo.shipped import shipped
    rows = [r.summary() for r in shipped()]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        acc = f"{r['val_accuracy']:.4f}" if r["val_accuracy"] is not None else "-"
        fps = f"{r['faces_per_s']:.0f}" if r["faces_per_s"] else "-"
        print(f"{r['name']:<9} val_acc {acc}  faces/s(1 thread) {fps:>6}  "
              f"{r['input_size']}px x{r['channels']}  {','.join(r['classes'])}\n"
              f"          {r['path']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ferkit", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"ferkit {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_train(sub)
    _add_evaluate(sub)
    _add_calibrate(sub)
    _add_export(sub)
    add_analyze(sub)
    add_explain(sub)
    add_gan(sub)
    add_temporal(sub)
    add_quantize(sub)
    add_prune(sub)
    add_crossfit(sub)
    _add_audit(sub)
    add_pseudo(sub)
    _add_preprocess(sub)
    p = sub.add_parser("models", help="list the shipped models")
    p.add_argument("--json", action="store_true")
    add_serve(sub)
    return ap


def _add_evaluate(sub) -> None:
    """ferkit evaluate: a model on a labelled dataset."""
    p = sub.add_parser("evaluate", help="score a model on a labelled dataset")
    p.add_argument("--data", required=True, help="dataset folder, FER2013 CSV or label file")
    p.add_argument("--model", default=None, help="shipped name (default, fast, ferplus) or .onnx")
    p.add_argument("--split", default="val", help="split of a multi-split source (val)")
    p.add_argument("--tta", choices=["on", "flip", "none"], default=None,
                   help="test-time augmentation: on (the card's: mirror image plus any extra "
                   "views), flip (mirror only), none (default: as the card says)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--map", dest="class_map", default=None)
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--json", help="write the full report here")
    p.add_argument("--plots", help="folder for confusion matrix, reliability, selective PNGs")
    p.add_argument("--mc-dropout", type=int, default=0, metavar="T",
                   help="score the mean of T Monte-Carlo dropout passes")
    p.add_argument("--compare-model", default=None, metavar="MODEL",
                   help="a second model on the same faces: both reports and a paired test "
                   "(McNemar, accuracy difference with its 95%% interval)")


def _add_calibrate(sub) -> None:
    """ferkit calibrate: temperature scaling fitted on val, stored in the card."""
    p = sub.add_parser("calibrate", help="fit temperature scaling on val; store it in the card")
    p.add_argument("--model", default=None, help="shipped name or .onnx (its card is updated)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--bins", type=int, default=15,
                   help="equal-mass bins of the top-label confidence map fitted after the "
                   "temperature (0: temperature only)")


def _add_export(sub) -> None:
    """ferkit export: checkpoint to ONNX plus model card."""
    p = sub.add_parser("export", help="checkpoint -> ONNX + model card (needs ferkit[train])")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--name")
    p.add_argument("--parity-data", help="dataset whose val faces drive the parity check")
    p.add_argument("--checkpoint-out", help="also write a slim weights-only checkpoint here")
    p.add_argument("--no-val", action="store_true", help="skip ONNX val metrics in the card")
    p.add_argument("--tta-views", help="extra test-time views averaged with the mirror images, "
                   "e.g. 'scale=1.1;scale=0.9' (keys: scale, shift_x, shift_y, rotate)")
    p.add_argument("--half-weights", action="store_true",
                   help="store the weights as float16 (half the file; float32 arithmetic)")


def _add_preprocess(sub) -> None:
    """ferkit preprocess: raw photos to an aligned face dataset."""
    p = sub.add_parser("preprocess", help="raw photos -> aligned face dataset")
    p.add_argument("raw", help="folder of photos (<class>/*.jpg or unlabelled)")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=48)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gray", action="store_true", default=True)
    g.add_argument("--color", action="store_true")
    g2 = p.add_mutually_exclusive_group()
    g2.add_argument("--all-faces", action="store_true")
    g2.add_argument("--largest-face", action="store_true", default=True)
    p.add_argument("--detector", default="yunet", choices=["yunet", "haar"])
    p.add_argument("--min-face", type=int, default=20)
    p.add_argument("--no-progress", action="store_true")


def _add_audit(sub):
    p = sub.add_parser("privacy-audit", help="membership-inference audit of a model",
                       description="Loss-threshold, shadow-model (LiRA-style) and "
                       "reference-calibrated membership inference, each AUC with its 95% "
                       "interval: what does the model leak about its training set?")
    p.add_argument("--model", required=True, help=".onnx, shipped name, or .pt checkpoint")
    p.add_argument("--members", required=True, help="faces that were in the training set")
    p.add_argument("--non-members", required=True, help="faces that were not")
    p.add_argument("--n", type=int, default=None, help="faces per side (default: the smaller)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", help="labelled faces disjoint from both, for shadow models")
    p.add_argument("--shadow-models", type=int, default=0)
    p.add_argument("--shadow-epochs", type=int, default=8)
    p.add_argument("--reference-model", help="a model of the same classes that never saw the "
                   "audited faces (e.g. the public stage one of a two-stage run): adds the "
                   "difficulty-calibrated attack")
    p.add_argument("--compare-model", help="a second model trained on the same members (e.g. "
                   "the non-private counterpart of a DP model): audited on the same faces with "
                   "the same attacks, each AUC difference tested with DeLong's paired test")
    p.add_argument("--json", required=True)
    p.add_argument("--plots")


def cmd_audit(a) -> int:
    from ferkit.io import write_json
    from ferkit.privacy.audit import privacy_audit
    rep = privacy_audit(a.model, a.members, a.non_members, n=a.n, seed=a.seed,
                        reference=a.reference, shadow_models=a.shadow_models,
                        shadow_recipe={"epochs": a.shadow_epochs}, plots=a.plots,
                        reference_model=a.reference_model, compare_model=a.compare_model)
    write_json(a.json, rep)
    for name, r in rep["attacks"].items():
        lo, hi = r["auc_ci95"]
        print(f"{name:>20}: AUC {r['auc']:.4f} [{lo:.3f}, {hi:.3f}]  acc {r['accuracy']:.4f}  "
              f"TPR@1%FPR {r['tpr_at_1pct_fpr']:.4f}  TPR@0.1%FPR {r['tpr_at_0.1pct_fpr']:.4f}")
    if "comparison" in rep:
        print(f"minus {a.compare_model}, same faces (DeLong paired test):")
        for name, c in rep["comparison"]["attacks"].items():
            lo, hi = c["ci95"]
            print(f"{name:>20}: {c['auc_a']:.4f} - {c['auc_b']:.4f} = {c['difference']:+.4f} "
                  f"[{lo:+.3f}, {hi:+.3f}]  p = {c['p_value']:.2g}")
    if "dp_bound" in rep:
        b = rep["dp_bound"]
        print(f"{'DP bound':>20}: AUC <= {b['auc_max']:.4f}  acc <= {b['accuracy_max']:.4f} "
              f"(eps {b['epsilon']:.2f}, delta {b['delta']:.1e})")
    return 0


OPTIONAL = {"torch": "training, export and audits need pip install 'ferkit[train]'",
            "opacus": "DP training needs pip install 'ferkit[train]'",
            "onnx": "export and quantize need pip install 'ferkit[train]'",
            "yaml": "YAML recipes need pip install 'ferkit[train]'",
            "matplotlib": "plots need pip install 'ferkit[plots]'",
            "pandas": "DataFrames need pandas",
            "fastapi": "the server needs pip install 'ferkit[serve]'",
            "uvicorn": "the server needs pip install 'ferkit[serve]'",
            "multipart": "the server needs pip install 'ferkit[serve]'",
            "python_multipart": "the server needs pip install 'ferkit[serve]'"}

COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "export": cmd_export,
            "models": cmd_models, "analyze": cmd_analyze, "preprocess": cmd_preprocess,
            "privacy-audit": cmd_audit, "calibrate": cmd_calibrate,
            "pseudo-label": cmd_pseudo, "explain": cmd_explain, "gan": cmd_gan,
            "temporal": cmd_temporal, "quantize": cmd_quantize, "prune": cmd_prune,
            "crossfit": cmd_crossfit,
            "serve": cmd_serve, "survey": cmd_survey}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.cmd](args)
    except FerkitError as exc:
        print(f"ferkit: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in OPTIONAL:
            raise
        print(f"ferkit: error: {top} is not installed; {OPTIONAL[top]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ferkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
