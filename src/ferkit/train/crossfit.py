"""Cross-fitted (out-of-fold) distillation targets.

A teacher trained on the train faces has all but memorised them: its probabilities there
say little beyond the labels, whatever it scores on val. K runs of ``fold: I/K`` each leave
one stratified fold out (data/folds.py); each scores only the faces it never saw, with flip
TTA, so every train face gets a prediction as honest as a val prediction, label noise
included. ``crossfit_logits`` writes those logits to one .npz; a student takes them with
``distill_targets`` (softened by ``distill_temperature``, blended with ``distill_alpha``).
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import torch

from ferkit.data import FaceArray
from ferkit.data.folds import fold_ids, parse_fold
from ferkit.errors import ConfigError, DataError
from ferkit.io import atomic_path
from ferkit.train import checkpoint
from ferkit.train.config import TrainConfig
from ferkit.train.loop import images_to_tensor, predict_logits

# the options every fold run must share: the same faces, classes and folds
_SHARED = ("data", "classes", "class_map", "negative_vs_rest", "soft_labels", "input_size",
           "channels", "fold_seed")


def _fold_runs(runs: list[str]) -> list[tuple[int, int, dict, TrainConfig]]:
    """(fold I, K, checkpoint, config) of each run folder (its best.pt) or .pt file."""
    out = []
    for r in runs:
        p = Path(r)
        ck = checkpoint.load(p / "best.pt" if p.is_dir() else p)
        cfg = TrainConfig.from_dict(ck["config"])
        if not cfg.fold:
            raise ConfigError(f"{r}: not a fold run (train it with fold: I/K)")
        if cfg.extra_data:
            raise ConfigError(f"{r}: trained with extra_data, which no fold left out")
        out.append((*parse_fold(cfg.fold), ck, cfg))
    ks = {k for _, k, _, _ in out}
    found = sorted(i for i, _, _, _ in out)
    if len(ks) != 1 or found != list(range(1, next(iter(ks)) + 1)):
        raise ConfigError(f"crossfit needs each fold of one K exactly once; got folds "
                          f"{', '.join(c.fold for *_, c in out)}")
    first = out[0][3]
    for i, _, _, cfg in out[1:]:
        diff = [o for o in _SHARED if getattr(cfg, o) != getattr(first, o)]
        if diff:
            raise ConfigError(f"fold {i} differs from fold {out[0][0]} in {', '.join(diff)}")
    return out


def crossfit_logits(runs: list[str], out: str | Path, *, device: str = "cpu") -> dict:
    """Score every train face with the fold run that never saw it; write ``out`` (.npz:
    logits, labels, paths, classes, fold) atomically and return a summary."""
    from ferkit.train.trainer import load_train

    folds = _fold_runs(runs)
    k, cfg = folds[0][1], folds[0][3]
    train = load_train(dataclasses.replace(cfg, fold=None))
    ids = fold_ids(train.labels, k, cfg.fold_seed)
    logits = np.zeros((len(train), len(train.classes)), np.float32)
    per_fold = []
    for i, _, ck, _ in sorted(folds, key=lambda f: f[0]):
        if ck["classes"] != train.classes:
            raise ConfigError(f"fold {i}: classes {ck['classes']} differ from the data's "
                              f"{train.classes}")
        idx = np.flatnonzero(ids == i - 1)
        net = checkpoint.build_from_checkpoint(ck).to(device)
        mc = ck["model_config"]
        with torch.no_grad():
            z = predict_logits(net, images_to_tensor(train.images[idx]), mc["mean"], mc["std"],
                               tta=True, device=device)
        logits[idx] = z.numpy()
        per_fold.append({"fold": i, "faces": len(idx),
                         "oof_accuracy": float((z.argmax(1).numpy() == train.labels[idx]).mean()),
                         "val_accuracy": float(ck["val_report"]["accuracy"])
                         if "val_report" in ck else None})
    _save(out, logits, train, ids, k, cfg.fold_seed)
    return summary(logits, train, per_fold, out)


def _save(out, logits, train: FaceArray, ids, k: int, seed: int) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, logits=logits, labels=train.labels, paths=np.array(train.paths),
                        classes=np.array(train.classes), fold=ids, k=k, fold_seed=seed)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(buf.getvalue())


def summary(logits: np.ndarray, train: FaceArray, per_fold: list[dict], out) -> dict:
    """Out-of-fold agreement with the labels, overall and per class."""
    pred = logits.argmax(1)
    per_class = {c: float((pred[train.labels == j] == j).mean())
                 for j, c in enumerate(train.classes) if (train.labels == j).any()}
    return {"out": str(out), "faces": len(train), "k": len(per_fold),
            "oof_accuracy": float((pred == train.labels).mean()),
            "oof_recall_per_class": per_class, "folds": per_fold}


def load_targets(path: str | Path, train: FaceArray, temperature: float) -> torch.Tensor:
    """The softened out-of-fold probabilities of ``train``'s faces, matched by path."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: distill_targets file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            logits, paths, classes = z["logits"], z["paths"], z["classes"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{p}: not a crossfit targets file ({exc})") from None
    if list(classes) != list(train.classes):
        raise DataError(f"{p}: classes {list(classes)} differ from the training classes "
                        f"{train.classes}")
    index = {str(q): i for i, q in enumerate(paths)}
    missing = [q for q in train.paths if q not in index]
    if missing:
        raise DataError(f"{p}: no targets for {len(missing)} of {len(train)} train faces "
                        f"(e.g. {missing[0]}); made from other data?")
    rows = np.array([index[q] for q in train.paths])
    return torch.softmax(torch.from_numpy(logits[rows]) / temperature, 1)
