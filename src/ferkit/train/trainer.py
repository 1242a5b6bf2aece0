"""The training run: data, model, optimiser and schedule, epochs with progress, per-epoch
validation, best/last checkpoints (atomic), resume, history and curves."""
from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import FaceArray, load_dataset
from ..errors import ConfigError
from ..io import write_json
from ..labels import ClassSpec, parse_classes, parse_mapping
from ..metrics import classification_report
from ..models import create_model
from . import checkpoint
from .augment import augment, mix
from .averaging import make_averager
from .config import TrainConfig
from .freeze import train_mode, trainable_parameters
from .loop import (
    class_weights,
    images_to_tensor,
    lr_lambda,
    param_groups,
    predict_logits,
    soft_targets,
    to_input,
)
from .losses import (
    HardSampleReweighter,
    class_activation_maps,
    flip_consistency,
    neighbour_matrix,
    per_sample_loss,
    prepare_targets,
    weighted_mean,
)
from .report import record_session, write_history

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    out_dir: Path
    best_epoch: int
    best_metric: float
    val_report: dict
    seconds: float

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "best_epoch": self.best_epoch,
                "best_metric": self.best_metric, "seconds": self.seconds,
                "val_accuracy": self.val_report["accuracy"],
                "val_macro_f1": self.val_report["macro_f1"]}


def class_spec(cfg: TrainConfig) -> ClassSpec:
    return ClassSpec(parse_classes(cfg.classes), parse_mapping(cfg.class_map),
                     cfg.negative_vs_rest)


def load_splits(cfg: TrainConfig) -> tuple[FaceArray, FaceArray]:
    spec = class_spec(cfg)
    kw = dict(size=cfg.input_size, channels=cfg.channels, spec=spec, skip_bad=cfg.skip_bad)
    train = load_dataset(cfg.data, "train", soft=cfg.soft_labels, **kw)
    spec_val = ClassSpec(tuple(train.classes), spec.mapping, spec.binary_negative)
    kw["spec"] = spec_val
    if cfg.val_data:
        val = load_dataset(cfg.val_data, None if Path(cfg.val_data).is_dir() else "val", **kw)
    else:
        val = load_dataset(cfg.data, "val", **kw)
    if cfg.extra_data:
        from ..data.dataset import split_if_present
        extra = load_dataset(cfg.extra_data, split_if_present(cfg.extra_data, "train"), **kw)
        log.info("extra training data %s: %d faces %s", cfg.extra_data, len(extra), extra.counts())
        train = concat(train, extra)
    return train, val


def concat(a: FaceArray, b: FaceArray) -> FaceArray:
    soft = None
    if a.soft is not None or b.soft is not None:
        k = len(a.classes)
        oh = lambda d: d.soft if d.soft is not None else np.eye(k, dtype=np.float32)[d.labels]  # noqa: E731
        soft = np.concatenate([oh(a), oh(b)])
    return FaceArray(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]),
                     list(a.classes), a.paths + b.paths, soft)


class Trainer:
    """Runs one training job described by a TrainConfig into ``out_dir``."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
                 progress: bool = True, splits: tuple[FaceArray, FaceArray] | None = None,
                 init_state: dict | None = None):
        cfg.validate()
        self.cfg, self.out, self.resume, self.progress = cfg, Path(out_dir), resume, progress
        self.splits = splits              # pre-loaded (train, val), e.g. for shadow models
        self.init_state = init_state      # starting weights, e.g. for fine-tuning rounds
        self.out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(cfg.threads)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        t_start = time.time()
        train, val = self.splits or load_splits(cfg)
        log.info("train %d faces %s; val %d", len(train), train.counts(), len(val))
        k = len(train.classes)
        model = self._model(train.classes)
        if self.init_state is not None:
            model.load_state_dict(self.init_state)
        elif cfg.init_from:
            ck = checkpoint.load(cfg.init_from)
            if ck["classes"] != train.classes:
                raise ConfigError(f"{cfg.init_from}: classes {ck['classes']} differ from the "
                                  f"training classes {train.classes}")
            model.load_state_dict(ck["model"])
        mcfg = model.config
        self.neighbours = None
        if cfg.loss == "semantic_smooth":
            from ..semantic import label_vectors
            self.neighbours = neighbour_matrix(label_vectors(train.classes), cfg.semantic_alpha,
                                               cfg.semantic_tau)
        self.reweighter = HardSampleReweighter(len(train), cfg.reweight, cfg.reweight_weight,
                                               cfg.reweight_warmup) if cfg.reweight else None
        xtr, xva = images_to_tensor(train.images), images_to_tensor(val.images)
        targets = self._targets(train, xtr, mcfg)
        weights = class_weights(train.labels, k, cfg.balance_power) \
            if cfg.balance == "weights" else None
        steps = len(train) // cfg.batch_size
        if cfg.max_steps_per_epoch:
            steps = min(steps, cfg.max_steps_per_epoch)
        opt = self._optimizer(model)
        self.averager = make_averager(model, cfg)
        total = steps * cfg.epochs
        if cfg.schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, cfg.lr, total_steps=total, pct_start=min(0.3, max(0.05, cfg.warmup_epochs / cfg.epochs)))
        else:
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lr_lambda(cfg.schedule, total, int(cfg.warmup_epochs * steps), cfg.min_lr_ratio))
        state = {"epoch": 0, "best": -1.0, "best_epoch": -1, "history": [], "elapsed": 0.0,
                 "stale": 0}
        last = self.out / "last.pt"
        if self.resume and last.exists():
            ck = checkpoint.load(last)
            if ck["config"] != cfg.to_dict():
                raise ConfigError(f"{last}: was written with other options; resume with the "
                                  f"same options or start a new --out")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            state = ck["state"]
            if self.reweighter is not None:
                self.reweighter.load(ck["reweighter"])
            if self.averager is not None:
                self.averager.load_state_dict(ck["averager"])
            log.info("resumed from %s at epoch %d", last, state["epoch"])
        write_json(self.out / "config.json", cfg.to_dict())
        base = {"model_config": mcfg.to_dict(), "classes": train.classes,
                "config": cfg.to_dict()}
        first_epoch = state["epoch"]
        for epoch in range(first_epoch, cfg.epochs):
            t0 = time.time()
            tr_loss, tr_acc = self._epoch(model, opt, sched, xtr, train.labels, targets,
                                          weights, steps, epoch, mcfg)
            n_low = self.reweighter.end_epoch() if self.reweighter else 0
            rep, which = self._validate_epoch(model, xva, val, mcfg, epoch)
            dt = time.time() - t0
            state["elapsed"] += dt
            metric = rep[cfg.select_metric]
            row = {"epoch": epoch + 1, "train_loss": tr_loss, "train_acc": tr_acc,
                   "val_loss": rep["nll"], "val_acc": rep["accuracy"],
                   "val_macro_f1": rep["macro_f1"], "lr": opt.param_groups[0]["lr"],
                   "seconds": dt, "images_per_s": steps * cfg.batch_size / dt}
            if self.averager is not None:
                row.update(weights=which, val_acc_raw=self._raw_acc)
            if self.reweighter:
                row["downweighted"] = n_low
            state["history"].append(row)
            log.info("epoch %d/%d loss %.3f train %.3f val %.4f f1 %.4f (%.0fs)", epoch + 1,
                     cfg.epochs, tr_loss, tr_acc, rep["accuracy"], rep["macro_f1"], dt)
            state["epoch"] = epoch + 1
            if metric > state["best"]:
                state.update(best=metric, best_epoch=epoch + 1, stale=0)
                weights_now = model if which == "raw" else self.averager.module
                checkpoint.save(self.out / "best.pt", {**base, "model": weights_now.state_dict(),
                                                      "val_report": rep, "epoch": epoch + 1,
                                                      "weights": which})
            else:
                state["stale"] += 1
            checkpoint.save(last, {**base, "model": model.state_dict(),
                                   "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(), "state": state,
                                   "reweighter": self.reweighter.state() if self.reweighter else None,
                                   "averager": self.averager.state_dict() if self.averager else None})
            write_history(self.out, state["history"])
            record_session(self.out, t_start, first_epoch, epoch + 1, state["elapsed"])
            if self.reweighter:
                write_downweighted(self.out / "downweighted.csv", self.reweighter, train)
            if cfg.patience and state["stale"] >= cfg.patience:
                log.info("early stop: no improvement for %d epochs", cfg.patience)
                break
        best = checkpoint.load(self.out / "best.pt")
        summary = {"best_epoch": state["best_epoch"], "best_" + cfg.select_metric: state["best"],
                   "train_seconds": state["elapsed"], "wall_seconds": time.time() - t_start,
                   "hardware": hardware(cfg), "classes": train.classes,
                   "train_counts": train.counts(), "val_report": best["val_report"]}
        write_json(self.out / "summary.json", summary)
        return TrainResult(self.out, state["best_epoch"], state["best"], best["val_report"],
                           state["elapsed"])

    def _model(self, classes):
        cfg = self.cfg
        kw = {"norm": cfg.norm, "dropout": cfg.dropout}
        for key in ("width", "stem_stride", "stage1_stride", "crop"):
            if getattr(cfg, key):
                kw[key] = getattr(cfg, key)
        vectors = None
        if cfg.loss == "semantic":
            from ..semantic import label_vectors
            vectors = label_vectors(classes)
            kw.update(semantic_dim=vectors.shape[1], semantic_scale=cfg.semantic_scale)
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, len(classes), cfg.channels, **kw)
        if vectors is not None:
            model.label_vectors.copy_(torch.from_numpy(vectors))
        model = model.to(cfg.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _optimizer(self, model):
        cfg = self.cfg
        groups = param_groups(trainable_parameters(model, cfg.trainable), cfg.weight_decay)
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        return torch.optim.AdamW(groups, lr=cfg.lr)

    def _targets(self, train: FaceArray, xtr, mcfg) -> torch.Tensor:
        cfg = self.cfg
        k = len(train.classes)
        t = soft_targets(train.labels, k, train.soft if cfg.soft_labels else None)
        if not cfg.distill:
            return t
        probs = [self._teacher_probs(path, train, xtr) for path in cfg.teachers()]
        p = torch.stack(probs).mean(0)
        return (1 - cfg.distill_alpha) * t + cfg.distill_alpha * p

    def _teacher_probs(self, path: str, train: FaceArray, xtr) -> torch.Tensor:
        """One teacher's softened probabilities (flip TTA) on the clean train faces."""
        cfg = self.cfg
        teacher_ck = checkpoint.load(path)
        if teacher_ck["classes"] != train.classes:
            raise ConfigError(f"{path}: teacher classes {teacher_ck['classes']} differ "
                              f"from the training classes {train.classes}")
        teacher = checkpoint.build_from_checkpoint(teacher_ck).to(cfg.device)
        tm = teacher_ck["model_config"]
        log.info("distillation: teacher %s on %d faces", path, len(train))
        logits = predict_logits(teacher, xtr, tm["mean"], tm["std"], tta=True,
                                device=cfg.device, channels_last=False)
        return torch.softmax(logits / cfg.distill_temperature, 1)

    def _epoch(self, model, opt, sched, xtr, labels, targets, weights, steps, epoch, mcfg):
        cfg = self.cfg
        train_mode(model, cfg.trainable)
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)      # dropout: resumable per epoch
        rng = np.random.default_rng(cfg.seed * 1000 + epoch)
        if cfg.balance == "sampler":
            cw = 1.0 / np.bincount(labels)[labels]
            order = rng.choice(len(labels), steps * cfg.batch_size, p=cw / cw.sum())
        else:
            order = rng.permutation(len(labels))
        bar = _progress(steps, f"epoch {epoch + 1}/{cfg.epochs}", self.progress)
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(steps):
            idx_np = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            idx = torch.from_numpy(idx_np)
            x = augment(to_input(xtr[idx], mcfg.mean, mcfg.std), cfg.augment, g, cfg.crop or 0)
            t = prepare_targets(targets[idx], cfg.loss, g, self.neighbours)
            x, t = mix(x, t, cfg.augment, g)
            x, t = x.to(cfg.device), t.to(cfg.device)
            logits, extra = self._forward(model, x)
            per = per_sample_loss(logits, t, cfg.loss, smoothing=cfg.label_smoothing,
                                  scale=cfg.semantic_scale)
            sw = None
            if self.reweighter is not None:
                self.reweighter.update(idx_np, per.detach().cpu().numpy())
                sw = self.reweighter.weights(idx_np)
            loss = weighted_mean(per, t, weights, sw) + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if self.averager is not None:
                self.averager.after_step(model, epoch)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1).cpu() == t.argmax(1).cpu()).sum())
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def _forward(self, model, x):
        """Logits, plus the attention-consistency term when it is on (the flipped batch
        goes through the same forward pass)."""
        cfg = self.cfg
        lam = cfg.attention_consistency
        if lam:
            x = torch.cat([x, x.flip(3)])
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(cfg.device.split(":")[0], dtype=torch.bfloat16, enabled=cfg.bf16):
            if not lam:
                return model(x), 0.0
            fmap = model.features(x)
            logits = model.project(model.head(model.dropout(torch.flatten(model.pool(fmap), 1))))
        b = len(x) // 2
        cams = class_activation_maps(fmap, model.class_weights())
        return logits[:b], lam * flip_consistency(cams[:b], cams[b:])

    def _validate_epoch(self, model, xva, val: FaceArray, mcfg, epoch: int) -> tuple[dict, str]:
        """The epoch's val report and which weights it is for: the averaged weights once
        averaging has started, when they score at least as well as the raw ones."""
        av = self.averager
        if av is not None:
            av.after_epoch(model, epoch)
        rep = self._validate(model, xva, val, mcfg)
        self._raw_acc = rep["accuracy"]
        if av is None or not av.started:
            return rep, "raw"
        rep_avg = self._validate(av.module, xva, val, mcfg)
        key = self.cfg.select_metric
        return (rep_avg, av.kind) if rep_avg[key] >= rep[key] else (rep, "raw")

    def _validate(self, model, xva, val: FaceArray, mcfg) -> dict:
        """Val report; under bf16 autocast when training uses it (the exported model is
        float32: its card's figures are measured again through ONNX Runtime)."""
        cfg = self.cfg
        with torch.autocast(cfg.device.split(":")[0], dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = predict_logits(model, xva, mcfg.mean, mcfg.std, tta=cfg.val_tta,
                                    device=cfg.device, channels_last=cfg.channels_last)
        probs = torch.softmax(logits, 1).numpy()
        return classification_report(probs, val.labels, val.classes)


def write_downweighted(path: Path, rw: HardSampleReweighter, train: FaceArray) -> None:
    """The faces the reweighter currently down-weights, hardest first."""
    import csv

    from ..io import atomic_path
    idx = np.nonzero(rw.low)[0]
    idx = idx[np.argsort(-rw.ema[idx])]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "loss_ema"])
        for i in idx:
            w.writerow([train.paths[i], train.classes[train.labels[i]], f"{rw.ema[i]:.4f}"])


def _progress(total, desc, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def hardware(cfg: TrainConfig) -> dict:
    info = {"device": cfg.device, "threads": cfg.threads, "cpu": platform.processor() or
            platform.machine(), "torch": torch.__version__}
    if cfg.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
