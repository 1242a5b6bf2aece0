"""`ferkit` command line: a thin shell over the Python API, one subcommand per job.

User mistakes print one clear line (``ferkit: error: ...``) and exit 2; no stack trace.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from ferkit import __version__
from ferkit.cli.semi import add_pseudo, cmd_pseudo
from ferkit.cli.serve import add_serve, cmd_serve, cmd_survey
from ferkit.cli.tools import (
    add_explain,
    add_gan,
    add_quantize,
    add_temporal,
    cmd_explain,
    cmd_gan,
    cmd_quantize,
    cmd_temporal,
)
from ferkit.errors import FerkitError

log = logging.getLogger("ferkit")

# flag -> (TrainConfig key, type); None type means store_true
TRAIN_FLAGS = {
    "data": str, "val_data": str, "classes": str, "class_map": str, "model": str,
    "width": int, "norm": str, "dropout": float, "channels": int, "input_size": int,
    "epochs": int, "batch_size": int, "optimizer": str, "lr": float, "momentum": float,
    "weight_decay": float,
    "schedule": str, "warmup_epochs": float, "label_smoothing": float, "balance": str,
    "distill": str, "distill_alpha": float, "distill_temperature": float,
    "select_metric": str, "patience": int, "seed": int, "threads": int, "device": str,
    "max_steps_per_epoch": int, "trainable": str, "loss": str, "semantic_alpha": float,
    "semantic_tau": float, "semantic_scale": float, "attention_consistency": float,
    "reweight": float, "reweight_weight": float, "reweight_warmup": int, "extra_data": str,
    "stem_stride": int, "stage1_stride": int, "crop": int, "average": str,
    "average_start": float, "ema_decay": float,
}
TRAIN_SWITCHES = ("negative_vs_rest", "soft_labels", "skip_bad", "bf16")
AUG_FLAGS = {"rotate": float, "scale": float, "shift": float, "erase_p": float,
             "mixup": float, "cutmix": float, "mix_p": float}


def _add_train(sub):
    p = sub.add_parser("train", help="train a model (needs ferkit[train])",
                       description="Train a FER model. Options override the --recipe file.")
    p.add_argument("--recipe", help="YAML/JSON recipe (e.g. recipes/default.yaml)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and metrics")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="train at most N epochs in this call (a time-boxed session; continue "
                   "later with --resume)")
    p.add_argument("--export", action="store_true", help="export OUT/best.pt to OUT/model.onnx")
    for key, typ in TRAIN_FLAGS.items():
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=typ, default=None,
                       help=argparse.SUPPRESS if key == "max_steps_per_epoch" else None)
    p.add_argument("--map", dest="class_map", default=None,
                   help="rename/merge classes, e.g. sadness=sad,disgust=angry")
    for key in TRAIN_SWITCHES:
        p.add_argument("--" + key.replace("_", "-"), dest=key, action="store_true",
                       default=None)
    for key, typ in AUG_FLAGS.items():
        p.add_argument("--" + key.replace("_", "-"), dest="aug_" + key, type=typ, default=None)
    p.add_argument("--no-flip", dest="aug_flip", action="store_false", default=None)
    p.add_argument("--no-val-tta", dest="val_tta", action="store_false", default=None)
    p.add_argument("--no-progress", action="store_true")
    dp = p.add_argument_group("differential privacy (DP-SGD through Opacus)")
    dp.add_argument("--dp", action="store_true", help="train with DP-SGD")
    dp.add_argument("--epsilon", type=float, default=8.0)
    dp.add_argument("--delta", type=float, default=None, help="default 1/(10 N)")
    dp.add_argument("--max-grad-norm", type=float, default=1.0)
    dp.add_argument("--dp-trainable", choices=["all", "last-block", "head"], default="all")
    dp.add_argument("--init-from", help="checkpoint to start from (with --dp: the public-data "
                    "model of the two-stage recipe)")
    dp.add_argument("--accountant", choices=["prv", "rdp"], default="prv")
    dp.add_argument("--physical-batch", type=int, default=128)
    dp.add_argument("--grad-sample-mode", choices=["hooks", "ghost"], default="hooks")
    dp.add_argument("--no-feature-cache", action="store_true")
    dp.add_argument("--aug-multiplicity", type=int, default=1, metavar="K",
                    help="K augmented views per face, their per-sample gradients averaged "
                    "before clipping (K times the compute per step)")


def cmd_train(a) -> int:
    from ferkit.train.config import TrainConfig, load_recipe
    from ferkit.train.trainer import Trainer

    d = load_recipe(a.recipe) if a.recipe else {}
    for key in (*TRAIN_FLAGS, *TRAIN_SWITCHES, "val_tta"):
        if getattr(a, key, None) is not None:
            d[key] = getattr(a, key)
    aug = dict(d.get("augment") or {})
    for key in (*AUG_FLAGS, "flip"):
        v = getattr(a, "aug_" + key, None)
        if v is not None:
            aug[key] = v
    d["augment"] = aug
    if a.init_from and not a.dp:
        d["init_from"] = a.init_from
    if not d.get("data"):
        raise FerkitError("train: give --data (a dataset folder or CSV) or a --recipe with data")
    cfg = TrainConfig.from_dict(d)
    if a.dp:
        from ferkit.train.private import DPConfig, train_private
        if a.resume:
            raise FerkitError("--resume is not supported with --dp: a resumed DP run would "
                              "need the same Poisson sampler state; start a new --out")
        dpc = DPConfig(a.epsilon, a.delta, a.max_grad_norm, a.dp_trainable, a.init_from,
                       a.accountant, a.physical_batch, a.grad_sample_mode,
                       not a.no_feature_cache, a.aug_multiplicity)
        s = train_private(cfg, dpc, a.out, progress=not a.no_progress)
        print(json.dumps({"best_epoch": s["best_epoch"], "privacy": s["privacy"],
                          "val_accuracy": s["val_report"]["accuracy"]}, indent=2))
        return 0
    res = Trainer(cfg, a.out, resume=a.resume, progress=not a.no_progress,
                  stop_after=a.stop_after).fit()
    print(json.dumps(res.to_dict(), indent=2))
    if a.export:
        from ferkit.zoo.export import export
        export(f"{a.out}/best.pt", f"{a.out}/model.onnx")
        print(f"exported {a.out}/model.onnx")
    return 0


def cmd_evaluate(a) -> int:
    from ferkit.evaluation.evaluate import compare, evaluate
    from ferkit.io import write_json

    if a.compare_model:
        res = compare(a.data, a.model, a.compare_model, split=a.split,
                      tta=a.tta == "flip" if a.tta else None, threads=a.threads,
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
    rep = evaluate(a.data, a.model, split=a.split, tta=a.tta == "flip" if a.tta else None,
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
    card = export(a.checkpoint, a.out, name=a.name, parity_images=images,
                  slim_checkpoint=a.checkpoint_out, evaluate_val=not a.no_val)
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


def _add_analyze(sub):
    p = sub.add_parser("analyze", help="every face in photos, folders, videos, webcams",
                       description="Detect, align and classify every face; write one row per "
                       "face to OUT/faces.jsonl and/or faces.csv.")
    p.add_argument("inputs", nargs="*", help="images, folders, videos, or - for paths on stdin")
    p.add_argument("--out", required=True)
    p.add_argument("--format", default=None,
                   help="any of jsonl, csv, parquet, comma-separated (default jsonl,csv; "
                   "parquet with --engine ray)")
    p.add_argument("--resume", action="store_true",
                   help="skip inputs whose results in OUT are complete (a killed run resumes)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray actor pool (ferkit[scale])")
    p.add_argument("--address", default=None,
                   help="Ray cluster: auto, ray://host:port (default: a local cluster)")
    p.add_argument("--num-workers", type=int, default=2, help="Ray actors (one model copy each)")
    p.add_argument("--model", default="default", help="default, fast, ferplus or a .onnx path")
    p.add_argument("--detector", default="yunet", choices=["yunet", "haar", "none"])
    p.add_argument("--score-threshold", type=float, default=0.7)
    p.add_argument("--min-face", type=int, default=10, help="smallest face side in pixels")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tta", choices=["flip", "none"], default=None)
    p.add_argument("--webcam", type=int, default=None, metavar="INDEX")
    p.add_argument("--show", action="store_true", help="live window (needs a display)")
    p.add_argument("--stride", type=int, default=1, help="analyse every N-th video frame")
    p.add_argument("--start", type=float, default=0.0, help="video start (s)")
    p.add_argument("--end", type=float, default=None, help="video end (s)")
    p.add_argument("--smooth", choices=["ema", "none"], default="ema")
    p.add_argument("--ema-alpha", type=float, default=0.5)
    p.add_argument("--annotate", action="store_true", help="write annotated images/videos")
    p.add_argument("--blur-faces", action="store_true", help="pixelate faces in annotations")
    p.add_argument("--save-crops", action="store_true", help="store aligned face crops")
    p.add_argument("--aggregate-only", action="store_true",
                   help="no per-face rows: per-photo counts, timelines and summaries only")
    p.add_argument("--alert", type=float, default=None, metavar="THRESHOLD",
                   help="negative-score threshold for alert events")
    p.add_argument("--alert-min-seconds", type=float, default=2.0)
    p.add_argument("--timeline-bin", type=float, default=1.0, help="timeline bin (s)")
    p.add_argument("--max-pixels", type=float, default=60e6, help="refuse larger images")
    p.add_argument("--abstain", default=None, metavar="prob:T|entropy:T|mi:T",
                   help="answer 'uncertain' below top probability T, above entropy T, or "
                   "above MC-dropout mutual information T")
    p.add_argument("--mc-dropout", type=int, default=0, metavar="T",
                   help="T Monte-Carlo dropout passes per face: mean probabilities and "
                   "mutual information (one backbone pass, T cheap head passes)")
    p.add_argument("--detect-every", type=int, default=2, metavar="N",
                   help="videos: detect faces on every Nth frame, reuse boxes in between "
                   "(default 2, for real time on 2 cores; 1: every frame)")
    p.add_argument("--temporal", default=None, metavar="NPZ",
                   help="videos: classify each track's last frames with this sequence head "
                   "(from `ferkit temporal train`) instead of EMA smoothing")
    p.add_argument("--no-progress", action="store_true")


def cmd_analyze(a) -> int:
    from pathlib import Path

    from ferkit.analysis.media import expand_inputs
    from ferkit.analysis.pipeline import Analyzer, AnalyzerConfig
    from ferkit.analysis.run import RunOptions, run_analysis

    fmt = a.format or ("parquet" if a.engine == "ray" else "jsonl,csv")
    formats = tuple(f.strip() for f in fmt.split(",") if f.strip())
    if not formats or set(formats) - {"jsonl", "csv", "parquet"}:
        raise FerkitError(f"--format {fmt!r}: use jsonl, csv, parquet or a comma list of them")
    if a.num_workers < 1:
        raise FerkitError("--num-workers must be >= 1")
    inputs: list = expand_inputs(a.inputs)
    if a.webcam is not None:
        inputs.append(a.webcam)
    if not inputs:
        raise FerkitError("analyze: give at least one input (file, folder, -, or --webcam N)")
    cfg = AnalyzerConfig.build(model=a.model, detector=a.detector,
                               score_threshold=a.score_threshold, min_face=a.min_face,
                               threads=a.threads, tta=None if a.tta is None else a.tta == "flip",
                               smooth=a.smooth, ema_alpha=a.ema_alpha,
                               max_pixels=int(a.max_pixels), abstain=a.abstain,
                               mc_dropout=a.mc_dropout, temporal=a.temporal,
                               detect_every=a.detect_every)
    opts = RunOptions(Path(a.out), formats, a.annotate, a.blur_faces, a.save_crops, a.stride,
                      a.start, a.end, a.alert, a.alert_min_seconds, a.timeline_bin, a.show,
                      not a.no_progress, a.aggregate_only)
    if a.engine == "ray":
        from ferkit.analysis.ray_engine import run_analysis_ray
        s = run_analysis_ray(cfg, inputs, opts, address=a.address, num_workers=a.num_workers,
                             resume=a.resume)
    else:
        s = run_analysis(Analyzer(cfg), inputs, opts, resume=a.resume)
    print(f"analysed {len(s.analysed)} input(s), {s.frames} frame(s), {s.faces} face(s); "
          f"failed {len(s.failed)}; photos without a face {len(s.no_face)}"
          + (f"; alerts {len(s.alerts)}" if a.alert is not None else "")
          + (f"; {len(s.resumed)} already done" if s.resumed else "") + f" -> {a.out}")
    for f in s.failed:
        print(f"  failed: {f['error']}", file=sys.stderr)
    return 0 if s.analysed else 1


def cmd_preprocess(a) -> int:
    from ferkit.analysis.preprocess import preprocess
    rep = preprocess(a.raw, a.out, size=a.size, gray=not a.color, all_faces=a.all_faces,
                     detector=a.detector, min_face=a.min_face, progress=not a.no_progress)
    print(f"{rep.faces} face(s) from {rep.photos} photo(s) (already done: {rep.skipped_done});"
          f" no face in {len(rep.no_face)}, unreadable {len(rep.failed)} -> {a.out}")
    return 0 if rep.faces or rep.skipped_done else 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ferkit", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"ferkit {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    _add_train(sub)
    p = sub.add_parser("evaluate", help="score a model on a labelled dataset")
    p.add_argument("--data", required=True, help="dataset folder, FER2013 CSV or label file")
    p.add_argument("--model", default=None, help="shipped name (default, fast, ferplus) or .onnx")
    p.add_argument("--split", default="val", help="split of a multi-split source (val)")
    p.add_argument("--tta", choices=["flip", "none"], default=None,
                   help="test-time augmentation (default: as the model card says)")
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
    p = sub.add_parser("calibrate", help="fit temperature scaling on val; store it in the card")
    p.add_argument("--model", default=None, help="shipped name or .onnx (its card is updated)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--bins", type=int, default=15,
                   help="equal-mass bins of the top-label confidence map fitted after the "
                   "temperature (0: temperature only)")
    p = sub.add_parser("export", help="checkpoint -> ONNX + model card (needs ferkit[train])")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--name")
    p.add_argument("--parity-data", help="dataset whose val faces drive the parity check")
    p.add_argument("--checkpoint-out", help="also write a slim weights-only checkpoint here")
    p.add_argument("--no-val", action="store_true", help="skip ONNX val metrics in the card")
    _add_analyze(sub)
    add_explain(sub)
    add_gan(sub)
    add_temporal(sub)
    add_quantize(sub)
    _add_audit(sub)
    add_pseudo(sub)
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
    p = sub.add_parser("models", help="list the shipped models")
    p.add_argument("--json", action="store_true")
    add_serve(sub)
    return ap


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
            "temporal": cmd_temporal, "quantize": cmd_quantize, "serve": cmd_serve,
            "survey": cmd_survey}


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
