"""Differentially private training (DP-SGD through Opacus) — the only Opacus import.

Opacus-style: the model, optimiser and data loader are wrapped by ``make_private_with_epsilon``
with Poisson sampling; the noise multiplier is solved from the target (epsilon, delta) and
the number of epochs; a logical batch larger than memory goes through BatchMemoryManager.
The epsilon spent is logged per epoch, stored in checkpoints and in the model card.

The two-stage recipe: ``init_from`` a checkpoint trained on public data, then fine-tune
``all`` layers, the ``last-block`` + head, or only the ``head``. Head-only training runs on
a cache of frozen-backbone features (one vector per face), which makes DP epochs cheap.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ferkit.errors import ConfigError
from ferkit.evaluation.metrics import classification_report
from ferkit.io import write_json
from ferkit.train import checkpoint, distributed
from ferkit.train.augment import augment
from ferkit.train.config import TrainConfig
from ferkit.train.epochs import run_epochs
from ferkit.train.freeze import train_mode, trainable_parameters
from ferkit.train.loop import images_to_tensor, lr_lambda, predict_logits, to_input
from ferkit.train.report import hardware
from ferkit.train.trainer import load_splits

log = logging.getLogger(__name__)


@dataclass
class DPConfig:
    epsilon: float = 8.0
    delta: float | None = None          # default 1 / (10 N)
    max_grad_norm: float = 1.0
    trainable: str = "all"              # all | last-block | head
    init_from: str | None = None        # public-data checkpoint (two-stage recipe)
    accountant: str = "prv"             # prv | rdp
    physical_batch: int = 128
    grad_sample_mode: str = "hooks"     # hooks | ghost
    feature_cache: bool = True          # head-only: train on cached backbone features
    aug_multiplicity: int = 1           # K augmented views per face, gradients averaged

    def validate(self, cfg: TrainConfig) -> None:
        """Refuse settings that would silently break the privacy guarantee."""
        if cfg.loss != "ce" or cfg.attention_consistency or cfg.reweight:
            raise ConfigError("DP training supports the plain cross-entropy loss only; drop "
                              "--loss/--attention-consistency/--reweight")
        if self.epsilon <= 0:
            raise ConfigError("--epsilon must be > 0")
        if self.trainable not in ("all", "last-block", "head"):
            raise ConfigError("--dp-trainable must be all, last-block or head")
        if cfg.augment.mixes:
            raise ConfigError("DP training cannot use mixup/cutmix: they mix examples, so one "
                              "face would influence another's gradient. Drop --mixup/--cutmix")
        if cfg.balance == "sampler":
            raise ConfigError("DP training needs Poisson sampling; --balance sampler would "
                              "replace it. Use --balance weights or none")
        if cfg.distill:
            raise ConfigError("distillation targets computed from private data are not "
                              "covered by the DP guarantee; drop --distill")
        if cfg.soft_labels:
            raise ConfigError("DP training here uses majority labels; drop --soft-labels")
        if cfg.sam_rho:
            raise ConfigError("DP training cannot use SAM: its second gradient per step is "
                              "neither clipped nor counted by the accountant; drop --sam-rho")
        if cfg.schedule == "onecycle":
            raise ConfigError("DP training steps its schedule once per epoch: use --schedule "
                              "cosine (with --warmup-epochs) or constant, not onecycle")
        if self.accountant not in ("prv", "rdp"):
            raise ConfigError("accountant must be prv or rdp")
        if self.aug_multiplicity < 1:
            raise ConfigError("--aug-multiplicity must be >= 1")
        if self.aug_multiplicity > 1:
            if self.grad_sample_mode != "hooks":
                raise ConfigError("--aug-multiplicity needs the per-sample gradients of "
                                  "--grad-sample-mode hooks; ghost clipping never forms them")
            if self.trainable == "head" and self.feature_cache:
                raise ConfigError("--aug-multiplicity augments images; the head-only feature "
                                  "cache has none. Add --no-feature-cache or drop it")


def check_norm_layers(model: nn.Module, which: str) -> None:
    """BatchNorm mixes examples of a batch (and its running statistics remember them):
    refuse it in any part that trains under DP."""
    from opacus.validators import ModuleValidator
    parts = {"all": [model], "last-block": [model.features[-1], model.head],
             "head": [model.head]}[which]
    model.train()
    for part in parts:
        errors = ModuleValidator.validate(part, strict=False)
        if errors:
            first = str(errors[0]).split(". ")[0]
            raise ConfigError(f"model is not DP-compatible where it trains ({which}): "
                              f"{first}. Train with --norm group (GroupNorm), or fine-tune "
                              f"only the head of a BatchNorm model (--dp-trainable head)")


class _HeadOnly(nn.Module):
    """Dropout + linear head over cached features."""

    def __init__(self, model):
        super().__init__()
        self.dropout, self.head = model.dropout, model.head

    def forward(self, f):
        return self.head(self.dropout(f))


def train_private(cfg: TrainConfig, dp: DPConfig, out_dir: str | Path, *,
                  progress: bool = True, splits=None) -> dict:
    """Train under DP-SGD; returns the summary (also written to OUT/summary.json). Under
    torchrun the model is wrapped in Opacus' DPDDP: each process Poisson-samples its shard
    at the one-process sampling rate, so the noise and the epsilon accounting are the same
    as in one process."""
    cfg.validate()
    dp.validate(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t_start = time.time()
    dist = distributed.setup(cfg.device, cfg.batch_size)
    try:
        train, val = splits or load_splits(cfg)
        step = PrivateStep(cfg, dp, train, val, dist, progress)
        state = run_epochs(step, out, cfg.epochs, resume=False, select_metric=cfg.select_metric,
                           main=dist.main, started=t_start)
        dist.barrier()
        summary = {"best_epoch": state["best_epoch"], "best_" + cfg.select_metric: state["best"],
                   "privacy": step.privacy, "train_seconds": state["elapsed"],
                   "wall_seconds": time.time() - t_start, "hardware": hardware(cfg, dist.world),
                   "classes": train.classes, "train_counts": train.counts(),
                   "val_report": checkpoint.load(out / "best.pt")["val_report"]}
        if dist.main:
            write_json(out / "summary.json", summary)
    finally:
        distributed.teardown(dist)
    return summary


class PrivateStep:
    """One DP-SGD epoch per call, for train/epochs.py's loop."""

    def __init__(self, cfg: TrainConfig, dp: DPConfig, train, val, dist, progress: bool):
        from opacus import PrivacyEngine
        self.cfg, self.dp, self.train, self.val, self.dist = cfg, dp, train, val, dist
        self.progress = progress
        k = len(train.classes)
        self.delta = dp.delta if dp.delta is not None else 1.0 / (10 * len(train))
        model, self.mcfg = _model(cfg, dp, train.classes, k)
        for m in model.modules():      # Opacus' backward hooks forbid in-place activations
            if isinstance(m, nn.ReLU):
                m.inplace = False
        check_norm_layers(model, dp.trainable)
        self.model = model
        self.params = trainable_parameters(model, dp.trainable)
        xtr, self.xva = images_to_tensor(train.images), images_to_tensor(val.images)
        ytr = torch.from_numpy(train.labels)
        self.head_cache = dp.trainable == "head" and dp.feature_cache
        if self.head_cache:
            net, data = _HeadOnly(model), torch.utils.data.TensorDataset(
                _features(model, xtr, self.mcfg), ytr)
        else:
            net, data = model, torch.utils.data.TensorDataset(xtr, ytr)
        if dist.active:
            from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
            net = DPDDP(net)
        loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                             generator=torch.Generator().manual_seed(cfg.seed))
        opt = (torch.optim.SGD(self.params, lr=cfg.lr, momentum=cfg.momentum)
               if cfg.optimizer == "sgd" else torch.optim.AdamW(self.params, lr=cfg.lr,
                                                                  weight_decay=cfg.weight_decay))
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.engine = PrivacyEngine(accountant=dp.accountant)
        wrapped = self.engine.make_private_with_epsilon(
            module=net, optimizer=opt, criterion=criterion, data_loader=loader,
            target_epsilon=dp.epsilon, target_delta=self.delta, epochs=cfg.epochs,
            max_grad_norm=dp.max_grad_norm, poisson_sampling=True,
            grad_sample_mode=dp.grad_sample_mode,
            noise_generator=torch.Generator().manual_seed(cfg.seed + dist.rank))
        if dp.grad_sample_mode == "ghost":
            self.net, self.opt, self.criterion, self.loader = wrapped
        else:
            (self.net, self.opt, self.loader), self.criterion = wrapped, criterion
        self.sample_rate = 1 / len(self.loader)
        self.noise = self.opt.noise_multiplier
        log.info("DP-SGD: target eps %.2f delta %.2e, noise multiplier %.3f, sample rate %.4f",
                 dp.epsilon, self.delta, self.noise, self.sample_rate)
        self.g = torch.Generator().manual_seed(cfg.seed + 7919 * dist.rank)
        # the schedule steps per epoch: Opacus' optimiser skips the step of every physical
        # batch that does not close a logical one, so per-step counts would drift
        self.lr_at = lr_lambda(cfg.schedule, cfg.epochs, int(round(cfg.warmup_epochs)),
                               cfg.min_lr_ratio)
        self.base = {"model_config": self.mcfg, "classes": train.classes,
                     "config": cfg.to_dict(), "dp": asdict(dp)}

    def load(self, last: dict) -> None:
        raise ConfigError("--resume is not supported with --dp")

    def train_epoch(self, epoch: int) -> dict:
        from opacus.utils.batch_memory_manager import BatchMemoryManager
        from tqdm import tqdm
        cfg, dp, kk = self.cfg, self.dp, self.dp.aug_multiplicity
        for group in self.opt.param_groups:
            group["lr"] = cfg.lr * self.lr_at(epoch)
        self.net.train()
        if self.head_cache is False and dp.trainable != "all":
            train_mode(self.model, dp.trainable)
        seen = loss_sum = 0.0
        with BatchMemoryManager(data_loader=self.loader, max_physical_batch_size=dp.physical_batch,
                                optimizer=self.opt) as mem_loader:
            for xb, yb in tqdm(mem_loader, desc=f"dp epoch {epoch + 1}", leave=False,
                               disable=not self.progress or not self.dist.main):
                if len(yb) == 0:
                    continue
                if not self.head_cache:
                    xb = to_input(xb, self.mcfg["mean"], self.mcfg["std"])
                    if kk > 1:                          # face i at rows i*K .. i*K+K-1
                        xb = xb.repeat_interleave(kk, 0)
                    xb = augment(xb, cfg.augment, self.g)
                loss = self.criterion(self.net(xb), yb.repeat_interleave(kk) if kk > 1 else yb)
                self.opt.zero_grad()
                loss.backward()
                if kk > 1:
                    _average_views(self.params, kk)
                self.opt.step()
                loss_sum += float(loss.detach()) * len(yb)
                seen += len(yb)
        loss_sum, seen = self.dist.sum([loss_sum, seen])
        self.eps = self.engine.get_epsilon(self.delta)
        return {"train_loss": loss_sum / max(seen, 1), "seen": seen}

    def evaluate(self, epoch: int) -> tuple[dict, str]:
        self._rep = _validate(self.model, self.xva, self.val, self.mcfg, self.cfg)
        return self._rep, "raw"

    def history_row(self, epoch, stats, rep, which, seconds) -> dict:
        self._epochs = epoch + 1
        log.info("dp epoch %d/%d val %.4f eps %.2f (%.0fs)", epoch + 1, self.cfg.epochs,
                 rep["accuracy"], self.eps, seconds)
        return {"epoch": epoch + 1, "train_loss": stats["train_loss"], "train_acc": float("nan"),
                "val_loss": rep["nll"], "val_acc": rep["accuracy"],
                "val_macro_f1": rep["macro_f1"], "lr": self.opt.param_groups[0]["lr"],
                "seconds": seconds, "images_per_s": stats["seen"] / seconds,
                "epsilon": self.eps}

    @property
    def privacy(self) -> dict:
        dp = self.dp
        return {"epsilon": self.eps, "delta": self.delta, "target_epsilon": dp.epsilon,
                "accountant": dp.accountant, "sample_rate": self.sample_rate,
                "noise_multiplier": self.noise, "max_grad_norm": dp.max_grad_norm,
                "epochs": self._epochs, "trainable": dp.trainable, "init_from": dp.init_from,
                "n_private": len(self.train), "aug_multiplicity": dp.aug_multiplicity,
                "processes": self.dist.world}

    def best_payload(self, rep, which, epoch) -> dict:
        return {**self.base, "model": _plain_state(self.model), "privacy": self.privacy,
                "val_report": rep, "epoch": epoch + 1}

    def last_payload(self, state) -> dict:
        return self.best_payload(self._rep, "raw", state["epoch"] - 1)

    def after_epoch(self, out: Path) -> None:
        pass


def _average_views(params, k: int) -> None:
    """Augmentation multiplicity (De et al. 2022): one gradient per face, the mean of its K
    views' per-sample gradients, so that clipping and the accounting still see one example
    per face while the augmentation noise averages out."""
    for p in params:
        gs = getattr(p, "grad_sample", None)
        if gs is not None:
            p.grad_sample = gs.view(gs.shape[0] // k, k, *gs.shape[1:]).mean(1)


def _model(cfg: TrainConfig, dp: DPConfig, classes, k):
    if dp.init_from:
        ck = checkpoint.load(dp.init_from)
        if ck["classes"] != classes:
            raise ConfigError(f"{dp.init_from}: classes {ck['classes']} differ from {classes}")
        model = checkpoint.build_from_checkpoint(ck)
        return model, ck["model_config"]
    from ferkit.models import create_model
    model = create_model(cfg.model, k, cfg.channels, norm=cfg.norm, dropout=cfg.dropout,
                         **({"width": cfg.width} if cfg.width else {}))
    return model, model.config.to_dict()


@torch.no_grad()
def _features(model, x, mcfg) -> torch.Tensor:
    """Frozen-backbone features, averaged over the face and its mirror image (one
    example per face, so the per-example accounting is unchanged)."""
    model.eval()
    out = []
    for i in range(0, len(x), 256):
        b = to_input(x[i:i + 256], mcfg["mean"], mcfg["std"])
        out.append((model.embed(b) + model.embed(b.flip(3))) / 2)
    return torch.cat(out)


def _validate(model, xva, val, mcfg, cfg):
    logits = predict_logits(model, xva, mcfg["mean"], mcfg["std"], tta=cfg.val_tta,
                            channels_last=False)
    return classification_report(torch.softmax(logits, 1).numpy(), val.labels, val.classes)


def _plain_state(model) -> dict:
    """State dict without Opacus' wrapper prefixes."""
    return {k.replace("_module.", ""): v.detach().clone() for k, v in model.state_dict().items()}

