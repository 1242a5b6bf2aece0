"""The training run: data, model, optimiser and schedule, epochs with progress, per-epoch
validation, best/last checkpoints (atomic), resume, history and curves."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ferkit.cpuinfo import cpu_stamp
from ferkit.data import FaceArray, load_dataset
from ferkit.errors import ConfigError
from ferkit.evaluation.metrics import classification_report
from ferkit.io import write_json
from ferkit.labels import ClassSpec, parse_classes, parse_mapping
from ferkit.models import create_model
from ferkit.train import checkpoint, distributed
from ferkit.train.augment import augment, mix
from ferkit.train.averaging import make_averager
from ferkit.train.config import TrainConfig
from ferkit.train.distill import Teachers
from ferkit.train.epochs import run_epochs
from ferkit.train.freeze import train_mode, trainable_parameters
from ferkit.train.loop import (
    class_weights,
    images_to_tensor,
    lr_lambda,
    param_groups,
    predict_logits,
    soft_targets,
    to_input,
)
from ferkit.train.losses import (
    HardSampleReweighter,
    class_activation_maps,
    flip_consistency,
    neighbour_matrix,
    per_sample_loss,
    prepare_targets,
    weighted_mean,
)
from ferkit.train.optim import is_sam, make_optimizer, sam_update
from ferkit.train.report import hardware, write_downweighted

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


def load_train(cfg: TrainConfig) -> FaceArray:
    """The train split (without ``cfg.fold``'s faces when it is set; no extra data)."""
    train = load_dataset(cfg.data, "train", soft=cfg.soft_labels, **_load_options(cfg))
    if cfg.fold:
        from ferkit.data.folds import fold_mask
        keep = fold_mask(train.labels, cfg.fold, cfg.fold_seed)
        log.info("fold %s (seed %d): training on %d of %d train faces", cfg.fold,
                 cfg.fold_seed, int(keep.sum()), len(train))
        train = train.subset(np.flatnonzero(keep))
    return train


def load_splits(cfg: TrainConfig) -> tuple[FaceArray, FaceArray]:
    train = load_train(cfg)
    kw = _load_options(cfg)
    spec = kw["spec"]
    kw["spec"] = ClassSpec(tuple(train.classes), spec.mapping, spec.binary_negative)
    if cfg.val_data:
        val = load_dataset(cfg.val_data, None if Path(cfg.val_data).is_dir() else "val", **kw)
    else:
        val = load_dataset(cfg.data, "val", **kw)
    if cfg.extra_data:
        from ferkit.data.dataset import split_if_present
        extra = load_dataset(cfg.extra_data, split_if_present(cfg.extra_data, "train"), **kw)
        log.info("extra training data %s: %d faces %s", cfg.extra_data, len(extra), extra.counts())
        train = concat(train, extra)
    return train, val


def _load_options(cfg: TrainConfig) -> dict:
    return dict(size=cfg.input_size, channels=cfg.channels, spec=class_spec(cfg),
                skip_bad=cfg.skip_bad)


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
                 init_state: dict | None = None, stop_after: int | None = None):
        cfg.validate()
        self.stop_after = stop_after      # at most this many epochs in this call
        self.cfg, self.out, self.resume, self.progress = cfg, Path(out_dir), resume, progress
        self.splits = splits              # pre-loaded (train, val), e.g. for shadow models
        self.init_state = init_state      # starting weights, e.g. for fine-tuning rounds
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = cfg.device
        self.dist = distributed.Dist()
        torch.set_num_threads(cfg.threads)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        t_start = time.time()
        self.dist = distributed.setup(cfg.device, cfg.batch_size)
        self.device = distributed.device_for(self.dist, cfg.device)
        if self.dist.active and (cfg.reweight or cfg.attention_consistency):
            raise ConfigError("--reweight and --attention-consistency run in one process "
                              "only; they are not available under torchrun")
        try:
            train, val = self.splits or load_splits(cfg)
            self._setup(train, val)
            state = run_epochs(self, self.out, cfg.epochs, resume=self.resume,
                               select_metric=cfg.select_metric, patience=cfg.patience,
                               main=self.dist.main, started=t_start,
                               stop_after=self.stop_after,
                               session={**cpu_stamp(), "bf16": cfg.bf16})
            self.dist.barrier()             # best.pt is on disk before anyone reads it
            best = checkpoint.load(self.out / "best.pt")
            if self.dist.main:
                write_json(self.out / "summary.json", {
                    "best_epoch": state["best_epoch"], "best_" + cfg.select_metric: state["best"],
                    "train_seconds": state["elapsed"], "wall_seconds": time.time() - t_start,
                    "hardware": hardware(cfg, self.dist.world), "classes": train.classes,
                    "train_counts": train.counts(), "val_report": best["val_report"]})
        finally:
            distributed.teardown(self.dist)
        return TrainResult(self.out, state["best_epoch"], state["best"], best["val_report"],
                           state["elapsed"])

    def _setup(self, train: FaceArray, val: FaceArray) -> None:
        """Model, data tensors, targets, optimiser and schedule of the run."""
        cfg = self.cfg
        log.info("train %d faces %s; val %d", len(train), train.counts(), len(val))
        self.train, self.val = train, val
        model = self._model(train.classes)
        if self.init_state is not None:
            model.load_state_dict(self.init_state)
        elif cfg.init_from:
            ck = checkpoint.load(cfg.init_from)
            if ck["classes"] != train.classes:
                raise ConfigError(f"{cfg.init_from}: classes {ck['classes']} differ from the "
                                  f"training classes {train.classes}")
            model.load_state_dict(ck["model"])
        self.model, self.mcfg = model, model.config
        self.net = distributed.wrap(model, self.dist)
        self.neighbours = None
        if cfg.loss == "semantic_smooth":
            from ferkit.train.semantic import label_vectors
            self.neighbours = neighbour_matrix(label_vectors(train.classes), cfg.semantic_alpha,
                                               cfg.semantic_tau)
        self.reweighter = HardSampleReweighter(len(train), cfg.reweight, cfg.reweight_weight,
                                               cfg.reweight_warmup) if cfg.reweight else None
        self.xtr, self.xva = images_to_tensor(train.images), images_to_tensor(val.images)
        self.targets = self._targets(train, self.xtr, self.mcfg)
        self.weights = class_weights(train.labels, len(train.classes), cfg.balance_power) \
            if cfg.balance == "weights" else None
        self.steps = len(train) // cfg.batch_size
        if cfg.max_steps_per_epoch:
            self.steps = min(self.steps, cfg.max_steps_per_epoch)
        self.opt = self._optimizer(model)
        self.averager = make_averager(model, cfg)
        total = self.steps * cfg.epochs
        if cfg.schedule == "onecycle":
            self.sched = torch.optim.lr_scheduler.OneCycleLR(
                self.opt, cfg.lr, total_steps=total,
                pct_start=min(0.3, max(0.05, cfg.warmup_epochs / cfg.epochs)))
        else:
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(
                cfg.schedule, total, int(cfg.warmup_epochs * self.steps), cfg.min_lr_ratio))
        if self.dist.main:
            write_json(self.out / "config.json", cfg.to_dict())
        self.base = {"model_config": self.mcfg.to_dict(), "classes": train.classes,
                     "config": cfg.to_dict()}

    # --- the TrainStep protocol of train/epochs.py ---------------------------------------
    def load(self, ck: dict) -> None:
        if _result_options(ck["config"]) != _result_options(self.cfg.to_dict()):
            raise ConfigError(f"{self.out / 'last.pt'}: was written with other options; resume "
                              f"with the same options or start a new --out")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        if self.reweighter is not None:
            self.reweighter.load(ck["reweighter"])
        if self.averager is not None:
            self.averager.load_state_dict(ck["averager"])

    def train_epoch(self, epoch: int) -> dict:
        loss, acc = self._epoch(self.net, self.opt, self.sched, self.xtr, self.train.labels,
                                self.targets, self.weights, self.steps, epoch, self.mcfg)
        self._n_low = self.reweighter.end_epoch() if self.reweighter else 0
        return {"train_loss": loss, "train_acc": acc}

    def evaluate(self, epoch: int) -> tuple[dict, str]:
        return self._validate_epoch(self.model, self.xva, self.val, self.mcfg, epoch)

    def history_row(self, epoch, stats, rep, which, seconds) -> dict:
        cfg = self.cfg
        row = {"epoch": epoch + 1, **stats, "val_loss": rep["nll"], "val_acc": rep["accuracy"],
               "val_macro_f1": rep["macro_f1"], "lr": self.opt.param_groups[0]["lr"],
               "seconds": seconds, "images_per_s": self.steps * cfg.batch_size / seconds}
        if self.averager is not None:
            row.update(weights=which, val_acc_raw=self._raw_acc)
        if self.reweighter:
            row["downweighted"] = self._n_low
        return row

    def best_payload(self, rep, which, epoch) -> dict:
        weights = self.model if which == "raw" else self.averager.module
        return {**self.base, "model": weights.state_dict(), "val_report": rep,
                "epoch": epoch + 1, "weights": which}

    def last_payload(self, state) -> dict:
        return {**self.base, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "state": state,
                "reweighter": self.reweighter.state() if self.reweighter else None,
                "averager": self.averager.state_dict() if self.averager else None}

    def after_epoch(self, out: Path) -> None:
        if self.reweighter:
            write_downweighted(out / "downweighted.csv", self.reweighter, self.train)

    def _model(self, classes):
        cfg = self.cfg
        kw = model_kwargs(cfg)
        vectors = None
        if cfg.loss == "semantic":
            from ferkit.train.semantic import label_vectors
            vectors = label_vectors(classes)
            kw.update(semantic_dim=vectors.shape[1], semantic_scale=cfg.semantic_scale)
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, len(classes), cfg.channels, **kw)
        if vectors is not None:
            model.label_vectors.copy_(torch.from_numpy(vectors))
        model = model.to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _optimizer(self, model):
        groups = param_groups(trainable_parameters(model, self.cfg.trainable),
                              self.cfg.weight_decay)
        return make_optimizer(groups, self.cfg)

    def _targets(self, train: FaceArray, xtr, mcfg) -> torch.Tensor:
        """Per-face targets: labels (or vote distributions), blended with the teachers'
        probabilities under offline distillation; online, the blend happens per batch."""
        cfg = self.cfg
        t = soft_targets(train.labels, len(train.classes), train.soft if cfg.soft_labels else None)
        self.online_teachers = None
        if cfg.distill_targets:
            from ferkit.train.crossfit import load_targets
            probs = load_targets(cfg.distill_targets, train, cfg.distill_temperature)
            return (1 - cfg.distill_alpha) * t + cfg.distill_alpha * probs
        if not cfg.distill:
            return t
        teachers = Teachers(cfg.teachers(), train.classes, temperature=cfg.distill_temperature,
                            device=self.device, bf16=cfg.bf16, channels_last=cfg.channels_last)
        if cfg.distill_mode == "online":
            teachers.check_online(xtr.shape[-1])
            self.online_teachers = teachers
            return t
        return (1 - cfg.distill_alpha) * t + cfg.distill_alpha * teachers.offline(train, xtr)

    def _epoch(self, model, opt, sched, xtr, labels, targets, weights, steps, epoch, mcfg):
        cfg, dist = self.cfg, self.dist
        train_mode(self.model, cfg.trainable)
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
        sam = is_sam(opt)
        for s in range(steps):
            idx_np = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            idx = torch.from_numpy(idx_np)
            x = augment(to_input(xtr[idx], mcfg.mean, mcfg.std), cfg.augment, g, cfg.crop or 0)
            t = prepare_targets(targets[idx], cfg.loss, g, self.neighbours)
            x, t = mix(x, t, cfg.augment, g)
            if dist.active:               # the same global batch everywhere; keep our slice
                sl = dist.shard(len(idx))
                x, t = x[sl], t[sl]
            x, t = x.to(self.device), t.to(self.device)
            if self.online_teachers is not None:
                a = cfg.distill_alpha
                t = (1 - a) * t + a * self.online_teachers.online(x, mcfg.mean, mcfg.std)
            logits, per, extra = self._per_sample(model, x, t)
            sw = None
            if self.reweighter is not None:
                self.reweighter.update(idx_np, per.detach().cpu().numpy())
                sw = self.reweighter.weights(idx_np)
            loss = weighted_mean(per, t, weights, sw) + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if sam:
                sam_update(opt, model, partial(self._loss, model, x, t, weights, sw))
            else:
                opt.step()
            sched.step()
            if self.averager is not None:
                self.averager.after_step(self.model, epoch)
            loss_sum += loss.item() * len(t)
            correct += int((logits.argmax(1).cpu() == t.argmax(1).cpu()).sum())
            seen += len(t)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()
        loss_sum, correct, seen = dist.sum([loss_sum, correct, seen])
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def _per_sample(self, model, x, t):
        """Logits, per-sample losses and the attention-consistency term of a batch."""
        logits, extra = self._forward(model, x)
        per = per_sample_loss(logits, t, self.cfg.loss, smoothing=self.cfg.label_smoothing,
                              scale=self.cfg.semantic_scale)
        return logits, per, extra

    def _loss(self, model, x, t, weights, sw):
        """The batch's loss again (SAM's second pass, at the perturbed weights)."""
        _, per, extra = self._per_sample(model, x, t)
        return weighted_mean(per, t, weights, sw) + extra

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
                                    device=self.device, channels_last=cfg.channels_last)
        probs = torch.softmax(logits, 1).numpy()
        return classification_report(probs, val.labels, val.classes)


def _progress(total, desc, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def model_kwargs(cfg: TrainConfig) -> dict:
    """The create_model keyword arguments of a run's network (its architecture options)."""
    kw = {"norm": cfg.norm, "dropout": cfg.dropout, "input_size": cfg.input_size}
    for key in ("width", "stem_stride", "stage1_stride", "crop"):
        if getattr(cfg, key):
            kw[key] = getattr(cfg, key)
    return kw


# Options that change how fast a run goes, not the recipe it follows: a run may resume with
# others. bf16 also changes the rounding of the forward and backward passes (the weights and
# optimiser state stay float32), and which precision is faster depends on the CPU (bf16 can
# be slower without AMX); OUT/sessions.json records each invocation's CPU and precision.
_PACE_OPTIONS = ("threads", "bf16")


def _result_options(config: dict) -> dict:
    """The options that decide a run's result; an option added after a checkpoint was
    written counts as its default there, so older runs still resume."""
    full = {**TrainConfig().to_dict(), **config}
    return {k: v for k, v in full.items() if k not in _PACE_OPTIONS}
