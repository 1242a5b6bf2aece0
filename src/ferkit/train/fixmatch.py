"""FixMatch (Sohn et al. 2020): pseudo-labels made online, with consistency.

Every step takes B labelled faces (weak view, cross-entropy) and mu*B unlabelled ones. The
model labels each unlabelled face from a weak view (flip and shift, eval mode); a face whose
confidence passes ``threshold`` is then trained to give that label on a strong view (large
rotation, scale and shift, contrast and brightness jitter, a large erased patch). Nothing is
fixed by an early, poor model: a label is remade every time the face comes round.

So that one class (happy) cannot take over: the weak-view probabilities are distribution-
aligned (ReMixMatch, Berthelot et al. 2020), multiplied by the labelled class prior over the
running mean of the model's predictions and renormalised; and each class can get its own
threshold (Thresholds: FlexMatch or FreeMatch), lower for the classes the model is learning
slowly (disgust, fear, sad), so that they are not starved. The model validated on val each
epoch is an exponential moving average of the weights; the best epoch wins. Hidden labels of
the unlabelled faces (class sub-folders), when present, only measure the pseudo-labels'
purity per epoch: they are never used for training or selection.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferkit.data import FaceArray
from ferkit.errors import ConfigError
from ferkit.evaluation.metrics import classification_report
from ferkit.io import write_json
from ferkit.train import checkpoint
from ferkit.train.augment import AugmentConfig, augment, photometric
from ferkit.train.epochs import run_epochs
from ferkit.train.loop import images_to_tensor, lr_lambda, param_groups, predict_logits, to_input

log = logging.getLogger(__name__)


@dataclass
class FixMatchConfig:
    epochs: int = 40                  # passes over the unlabelled faces
    batch_size: int = 64              # labelled faces per step
    mu: int = 7                       # unlabelled faces per labelled face in a step
    threshold: float = 0.95
    lambda_u: float = 1.0             # weight of the unlabelled loss
    lr: float = 2e-3                  # AdamW, cosine to 0 over all steps
    weight_decay: float = 0.05
    ema: float = 0.999
    align: bool = True                # distribution alignment (no class takes over)
    thresholds: str = "self"          # fixed | flex | self (see Thresholds)
    strong_rotate: float = 30.0
    strong_scale: float = 0.25
    strong_shift: float = 0.15
    strong_erase: tuple[float, float] = (0.05, 0.3)
    brightness: float = 0.5
    contrast: float = 0.5
    seed: int = 0
    threads: int = 2
    bf16: bool = True                 # faster on CPUs with AVX512-BF16

    def validate(self):
        if self.epochs < 1 or self.batch_size < 1 or self.mu < 1:
            raise ConfigError("fixmatch: epochs, batch_size and mu must be at least 1")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"fixmatch: threshold must be in (0, 1], got {self.threshold}")
        if self.thresholds not in ("fixed", "flex", "self"):
            raise ConfigError("fixmatch: thresholds must be fixed, flex or self, got "
                              f"{self.thresholds!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"fixmatch: ema must be in [0, 1), got {self.ema}")


def _ema_update(ema, model, decay: float) -> None:
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for be, b in zip(ema.buffers(), model.buffers()):
            be.copy_(b)


def align(p: torch.Tensor, prior: torch.Tensor, running: torch.Tensor, momentum: float = 0.999):
    """Distribution alignment: the running mean of the predictions is updated with this batch,
    then each row is scaled by prior / running mean and renormalised. A class the model
    predicts more often than the labelled data has it loses probability mass."""
    running = momentum * running + (1 - momentum) * p.mean(0)
    q = p * (prior / running)
    return q / q.sum(1, keepdim=True), running


class Thresholds:
    """Which unlabelled faces are trained on, per batch: ``fixed`` (one threshold, FixMatch),
    ``flex`` (FlexMatch, Zhang et al. 2021: class c's threshold scaled by beta_c / (2 - beta_c),
    beta_c the share of faces whose latest weak-view label was c with confidence over
    ``threshold``, normalised by the best-learnt class or, early on, by the faces not yet
    confidently labelled) or ``self`` (FreeMatch, Wang et al. 2023: a global threshold that is
    the running mean of the model's top confidence, times each class's running mean
    probability over the largest one; it follows the model's confidence, so it also works for
    a model trained with label smoothing, whose softmax rarely reaches 0.95)."""

    def __init__(self, mode: str, threshold: float, k: int, n: int, momentum: float = 0.999):
        if mode not in ("fixed", "flex", "self"):
            raise ConfigError(f"fixmatch: thresholds must be fixed, flex or self, got {mode!r}")
        self.mode, self.threshold, self.k, self.m = mode, threshold, k, momentum
        self.status = torch.full((n,), -1, dtype=torch.long)   # flex: latest confident label
        self.tau, self.pbar = None, None                        # self: running statistics

    def per_class(self) -> torch.Tensor:
        if self.mode == "flex":
            s = self.status
            sigma = torch.bincount(s[s >= 0], minlength=self.k).float()
            beta = sigma / max(float(sigma.max()), float((s < 0).sum()), 1.0)
            return self.threshold * beta / (2 - beta)
        if self.mode == "self" and self.tau is not None:
            return self.tau * self.pbar / self.pbar.max()
        return torch.full((self.k,), self.threshold)

    def __call__(self, probs: torch.Tensor, idx: np.ndarray):
        """(mask, pseudo-labels) for a batch of weak-view probabilities of faces ``idx``."""
        conf, pseudo = probs.max(1)
        if self.mode == "self":         # started from a trained model: start from its level
            first = self.tau is None
            self.tau = conf.mean() if first else self.m * self.tau + (1 - self.m) * conf.mean()
            mean = probs.mean(0)
            self.pbar = mean if first else self.m * self.pbar + (1 - self.m) * mean
        mask = conf >= self.per_class()[pseudo]
        if self.mode == "flex":
            self.status[torch.from_numpy(idx)] = torch.where(conf >= self.threshold, pseudo, -1)
        return mask, pseudo

    def state(self) -> dict:
        return {"status": self.status, "tau": self.tau, "pbar": self.pbar}

    def load(self, state: dict) -> None:
        self.status, self.tau, self.pbar = state["status"], state["tau"], state["pbar"]


def fixmatch(model_ckpt: str | Path, lab: FaceArray, unl: FaceArray, val_ds: FaceArray,
             out_dir: str | Path, fc: FixMatchConfig | None = None, *,
             progress: bool = True, stop_after: int | None = None) -> dict:
    """Train from ``model_ckpt`` on labelled ``lab`` and unlabelled ``unl`` (labels hidden or
    -1), select on ``val_ds``. Writes best.pt (the EMA weights of the best epoch), last.pt
    (everything needed to resume; an interrupted run with the same options resumes) and
    history.json; returns {"start", "epochs", "best"}. ``stop_after`` trains at most that
    many epochs in this call (a time-boxed run that a later call resumes)."""
    fc = fc or FixMatchConfig()
    fc.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = FixMatchStep(model_ckpt, lab, unl, val_ds, fc, progress)
    last = out / "last.pt"
    resume = last.is_file() and \
        checkpoint.load_raw(last, ("fixmatch",))["fixmatch"] == step.cfg_dict
    state = run_epochs(step, out, fc.epochs, resume=resume, select_metric="accuracy",
                       stop_after=stop_after, best=step.start_acc)
    return {"start": step.start_acc, "epochs": state["history"], "best": _best(state, step)}


def _best(state: dict, step) -> dict:
    if state["best_epoch"] < 1:
        return {"epoch": 0, "val_accuracy": step.start_acc}
    return {"epoch": state["best_epoch"], "val_accuracy": state["best"]}


class FixMatchStep:
    """One FixMatch epoch per call, for train/epochs.py's loop."""

    def __init__(self, model_ckpt, lab: FaceArray, unl: FaceArray, val_ds: FaceArray,
                 fc: FixMatchConfig, progress: bool):
        ck = checkpoint.load(model_ckpt)
        classes, self.mc = list(ck["classes"]), ck["model_config"]
        for name, ds in (("labelled", lab), ("val", val_ds)):
            if list(ds.classes) != classes:
                raise ConfigError(f"fixmatch: {name} classes {list(ds.classes)} differ from "
                                  f"the model's {classes}")
        torch.set_num_threads(fc.threads)
        self.fc, self.lab, self.unl, self.val_ds, self.progress = fc, lab, unl, val_ds, progress
        self.classes, k = classes, len(classes)
        self.model = checkpoint.build_from_checkpoint(ck).to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.model).eval()
        self.opt = torch.optim.AdamW(param_groups(
            (p for p in self.model.parameters() if p.requires_grad), fc.weight_decay), lr=fc.lr)
        self.steps = max(1, math.ceil(len(unl) / (fc.batch_size * fc.mu)))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda("cosine", fc.epochs * self.steps, 0, 0.0))
        self.prior = torch.from_numpy(np.bincount(lab.labels, minlength=k) / len(lab)).float()
        self.running = self.prior.clone()
        self.select = Thresholds(fc.thresholds, fc.threshold, k, len(unl))
        self.xl, self.xu, self.xva = (images_to_tensor(d.images) for d in (lab, unl, val_ds))
        self.yl = torch.from_numpy(lab.labels)
        self.weak = AugmentConfig(flip=True, rotate=0.0, scale=0.0, shift=0.125, erase_p=0.0)
        self.strong = AugmentConfig(flip=True, rotate=fc.strong_rotate, scale=fc.strong_scale,
                                    shift=fc.strong_shift, erase_p=1.0,
                                    erase_area=fc.strong_erase)
        self.cfg_dict = dataclasses.asdict(fc)
        self.start_acc = self._validate(self.model)["accuracy"]
        # what describes the model (classes, model_config, recipe), not another run's state
        self.base = {key: ck[key] for key in ("model_config", "classes", "config") if key in ck}

    def _validate(self, net) -> dict:
        z = predict_logits(net, self.xva, self.mc["mean"], self.mc["std"], tta=True)
        return classification_report(torch.softmax(z, 1).numpy(), self.val_ds.labels,
                                      self.classes)

    def load(self, last: dict) -> None:
        self.model.load_state_dict(last["model"])
        self.ema.load_state_dict(last["ema"])
        self.opt.load_state_dict(last["optimizer"])
        self.sched.load_state_dict(last["scheduler"])
        self.running = last["running"]
        self.select.load(last["selector"])

    def train_epoch(self, epoch: int) -> dict:
        from tqdm import tqdm
        fc, k = self.fc, len(self.classes)
        b, ub = fc.batch_size, fc.batch_size * fc.mu
        g = torch.Generator().manual_seed(fc.seed * 1000 + epoch)
        torch.manual_seed(fc.seed * 1000 + epoch)
        rng = np.random.default_rng(fc.seed * 1000 + epoch)
        uorder = rng.permutation(len(self.unl))
        lorder = np.concatenate([rng.permutation(len(self.lab))
                                 for _ in range(math.ceil(self.steps * b / len(self.lab)))])
        stats = {"taken": np.zeros(k, np.int64), "right": 0, "known": 0, "sums": np.zeros(2)}
        bar = tqdm(total=self.steps, desc=f"fixmatch {epoch + 1}/{fc.epochs}", leave=False,
                   disable=not self.progress, dynamic_ncols=True)
        for s in range(self.steps):
            self._step(uorder[s * ub:(s + 1) * ub], lorder[s * b:(s + 1) * b], g, stats)
            bar.update(1)
            bar.set_postfix(loss_l=f"{stats['sums'][0] / (s + 1):.3f}",
                            mask=f"{stats['taken'].sum() / ((s + 1) * ub):.2f}")
        bar.close()
        return stats

    def _step(self, ui, li, g, stats) -> None:
        """One FixMatch step: weak-view pseudo-labels, then labelled + strong-view loss."""
        fc, mc, model = self.fc, self.mc, self.model
        amp = dict(device_type="cpu", dtype=torch.bfloat16, enabled=fc.bf16)
        xun = to_input(self.xu[ui], mc["mean"], mc["std"])
        with torch.no_grad(), torch.autocast(**amp):
            model.eval()
            pw = torch.softmax(model(augment(xun, self.weak, g).contiguous(
                memory_format=torch.channels_last)).float(), 1)
        if fc.align:
            pw, self.running = align(pw, self.prior, self.running)
        mask, pseudo = self.select(pw, ui)
        mask = mask.float()
        model.train()
        xs = photometric(augment(xun, self.strong, g), fc.brightness, fc.contrast, g)
        x = torch.cat([augment(to_input(self.xl[li], mc["mean"], mc["std"]), self.weak, g), xs])
        with torch.autocast(**amp):
            logits = model(x.contiguous(memory_format=torch.channels_last)).float()
        loss_l = F.cross_entropy(logits[:len(li)], self.yl[li])
        loss_u = (F.cross_entropy(logits[len(li):], pseudo, reduction="none") * mask).mean()
        self.opt.zero_grad(set_to_none=True)
        (loss_l + fc.lambda_u * loss_u).backward()
        self.opt.step()
        self.sched.step()
        _ema_update(self.ema, model, fc.ema)
        sel = mask.bool().numpy()
        stats["taken"] += np.bincount(pseudo.numpy()[sel], minlength=len(self.classes))
        hidden = self.unl.labels[ui][sel]
        stats["right"] += int((hidden == pseudo.numpy()[sel])[hidden >= 0].sum())
        stats["known"] += int((hidden >= 0).sum())
        stats["sums"] += (loss_l.item(), loss_u.item())

    def evaluate(self, epoch: int) -> tuple[dict, str]:
        return self._validate(self.ema), "ema"

    def history_row(self, epoch, stats, rep, which, seconds) -> dict:
        taken, classes = stats["taken"], self.classes
        row = {"epoch": epoch + 1, "loss_labelled": stats["sums"][0] / self.steps,
               "loss_unlabelled": stats["sums"][1] / self.steps, "selected": int(taken.sum()),
               "of": len(self.unl), "per_class": {c: int(n) for c, n in zip(classes, taken)},
               "purity": stats["right"] / stats["known"] if stats["known"] else None,
               "thresholds": {c: round(float(t), 4)
                              for c, t in zip(classes, self.select.per_class())},
               "val_accuracy": rep["accuracy"], "val_macro_f1": rep["macro_f1"],
               "seconds": seconds}
        log.info("fixmatch epoch %d/%d: %d/%d faces over the threshold %s purity %s val %.4f "
                 "(%.0fs)", epoch + 1, self.fc.epochs, row["selected"], len(self.unl),
                 row["per_class"], None if row["purity"] is None else round(row["purity"], 3),
                 rep["accuracy"], seconds)
        return row

    def best_payload(self, rep, which, epoch) -> dict:
        return {**self.base, "model": self.ema.state_dict(), "val_report": rep,
                "epoch": epoch + 1, "fixmatch": self.cfg_dict}

    def last_payload(self, state) -> dict:
        return {**self.base, "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "running": self.running, "selector": self.select.state(), "state": state,
                "history": state["history"], "best": _best(state, self),
                "fixmatch": self.cfg_dict}

    def write_history(self, out: Path, state: dict) -> None:
        write_json(out / "history.json", {"config": self.cfg_dict, "start": self.start_acc,
                                          "epochs": state["history"],
                                          "best": _best(state, self)})

    def after_epoch(self, out: Path) -> None:
        pass
