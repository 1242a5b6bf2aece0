"""`ferkit train`: flags mapped onto TrainConfig (options override the --recipe file), plain,
DP-SGD and DDP (under torchrun) runs. Registered by cli.commands.build_parser."""
from __future__ import annotations

import argparse
import json

from ferkit.errors import FerkitError

TRAIN_FLAGS = {
    "data": str, "val_data": str, "classes": str, "class_map": str, "model": str,
    "width": int, "norm": str, "dropout": float, "channels": int, "input_size": int,
    "epochs": int, "batch_size": int, "optimizer": str, "lr": float, "momentum": float,
    "weight_decay": float,
    "schedule": str, "warmup_epochs": float, "label_smoothing": float, "balance": str,
    "distill": str, "distill_alpha": float, "distill_temperature": float, "distill_mode": str,
    "select_metric": str, "patience": int, "seed": int, "threads": int, "device": str,
    "max_steps_per_epoch": int, "trainable": str, "loss": str, "semantic_alpha": float,
    "semantic_tau": float, "semantic_scale": float, "attention_consistency": float,
    "reweight": float, "reweight_weight": float, "reweight_warmup": int, "extra_data": str,
    "stem_stride": int, "stage1_stride": int, "crop": int, "average": str,
    "average_start": float, "ema_decay": float, "sam_rho": float, "fold": str, "fold_seed": int,
    "distill_targets": str,
}
TRAIN_SWITCHES = ("negative_vs_rest", "soft_labels", "skip_bad", "bf16", "sam_adaptive")
AUG_FLAGS = {"rotate": float, "scale": float, "shift": float, "erase_p": float,
             "mixup": float, "cutmix": float, "mix_p": float}


def add_train(sub):
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
    p.add_argument("--no-bf16", dest="bf16", action="store_false",
                   help="train in float32 where the recipe asks for bf16: faster on CPUs "
                   "without AMX, where bf16 autocast can be slower (docs/guide/train.md)")
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
