"""TrainConfig: every knob of `ferkit train`, with documented defaults. A recipe file
(YAML or JSON) holds a subset of these keys; unknown keys are errors."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ferkit.errors import ConfigError
from ferkit.train.augment import AugmentConfig

LOSSES = ("ce", "kl", "sample", "semantic", "semantic_smooth")


@dataclass
class TrainConfig:
    # data
    data: str = ""                    # dataset root, CSV or FER+ folder (train split)
    val_data: str | None = None       # explicit validation source (default: data's val split)
    classes: str | None = None        # taxonomy name or comma list (subset/order)
    class_map: str | None = None      # rename/merge, e.g. "sadness=sad,disgust=angry"
    negative_vs_rest: bool = False
    soft_labels: bool = False         # FER+ vote distributions as targets
    skip_bad: bool = False
    # model
    model: str = "resnet18"
    width: int | None = None
    norm: str = "batch"
    dropout: float = 0.3
    channels: int = 1
    input_size: int = 48
    stem_stride: int | None = None    # 1: stem and first stage at full resolution (resnets)
    stage1_stride: int | None = None  # 2 with stem_stride 1: only the stem at full resolution
    crop: int | None = None           # train on random crops of this size; the model
                                      # centre-crops at test, so it still takes input_size
    # optimisation
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"          # adamw | sgd
    lr: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"          # cosine | onecycle | constant
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    sam_rho: float = 0.0              # sharpness-aware minimisation radius; 0: off (2x cost)
    sam_adaptive: bool = False        # ASAM: the radius scaled by each weight's size
    balance: str = "none"             # none | weights | sampler
    balance_power: float = 0.5        # class weight = (N / (K n_c)) ** power
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # fine-tuning (the two-stage recipe without DP, pseudo-label rounds)
    init_from: str | None = None      # checkpoint whose weights start the run
    trainable: str = "all"            # all | last-block | head
    # losses for ambiguous labels (see train/losses.py)
    loss: str = "ce"                  # ce | kl | sample | semantic | semantic_smooth
    semantic_alpha: float = 0.3       # semantic_smooth: share of the target moved to neighbours
    semantic_tau: float = 0.1         # semantic_smooth: softmax temperature on similarities
    semantic_scale: float = 10.0      # semantic: logits = scale * cos(z, label vector)
    attention_consistency: float = 0.0  # weight of the flip-consistency loss on CAMs; 0: off
    reweight: float = 0.0             # share of samples down-weighted for staying hard; 0: off
    reweight_weight: float = 0.3      # their loss weight
    reweight_warmup: int = 2          # epochs of loss history before reweighting starts
    extra_data: str | None = None     # extra labelled faces (e.g. GAN samples) added to train
    fold: str | None = None           # "I/K": train without fold I of K (cross-fitting)
    fold_seed: int = 0                # the shuffle of the stratified folds
    # weight averaging over the end of the run (torch.optim.swa_utils)
    average: str = "none"             # none | ema (per step) | swa (equal, per epoch)
    average_start: float = 0.75       # share of the epochs after which averaging starts
    ema_decay: float = 0.999
    # distillation (ferkit.train.distill: offline targets fixed once, or online per batch)
    distill: str | list[str] | None = None  # teacher .pt checkpoints or .onnx exports; averaged
    distill_alpha: float = 0.7
    distill_temperature: float = 2.0
    distill_mode: str = "offline"     # offline (targets fixed once) | online (per batch)
    distill_targets: str | None = None  # out-of-fold logits of the train faces (ferkit crossfit)
    # selection
    select_metric: str = "accuracy"   # accuracy | macro_f1
    patience: int = 0                 # epochs without improvement before stopping; 0: off
    val_tta: bool = True              # validate with flip test-time augmentation
    # machine
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    channels_last: bool = True
    bf16: bool = False                # bf16 autocast: faster with AMX or on Zen 4/5; slower on some
                                      # CPUs without AMX (benchmarks/train_speed.py --recipe)
    max_steps_per_epoch: int | None = None   # for smoke tests

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        aug = d.pop("augment", None) or {}
        if isinstance(aug, dict):
            anames = {f.name for f in dataclasses.fields(AugmentConfig)}
            bad = set(aug) - anames
            if bad:
                raise ConfigError(f"unknown augment option(s): {', '.join(sorted(bad))}")
            if "erase_area" in aug:
                aug["erase_area"] = tuple(aug["erase_area"])
            aug = AugmentConfig(**aug)
        cfg = cls(**d, augment=aug)
        cfg.validate()
        return cfg

    def teachers(self) -> list[str]:
        """The distillation teachers as a list (a recipe may give one path or several)."""
        if not self.distill:
            return []
        if isinstance(self.distill, str):
            return [t.strip() for t in self.distill.split(",") if t.strip()]
        return [str(t) for t in self.distill]

    def validate(self) -> None:
        checks = [
            (self.optimizer in ("adamw", "sgd"), "optimizer must be adamw or sgd"),
            (self.schedule in ("cosine", "onecycle", "constant"),
             "schedule must be cosine, onecycle or constant"),
            (self.balance in ("none", "weights", "sampler"),
             "balance must be none, weights or sampler"),
            (self.select_metric in ("accuracy", "macro_f1"),
             "select_metric must be accuracy or macro_f1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (self.lr > 0, "lr must be > 0"),
            (self.sam_rho >= 0, "sam_rho must be >= 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.channels in (1, 3), "channels must be 1 or 3"),
            (self.norm in ("batch", "group"), "norm must be batch or group"),
            (self.trainable in ("all", "last-block", "head"),
             "trainable must be all, last-block or head"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
            (self.loss not in ("kl", "sample") or self.soft_labels,
             f"--loss {self.loss} needs label distributions: add --soft-labels (FER+ votes)"),
            (0 <= self.reweight < 1, "reweight must be in [0, 1)"),
            (self.attention_consistency >= 0, "attention_consistency must be >= 0"),
            (self.distill_mode in ("offline", "online"),
             "distill_mode must be offline or online"),
            (self.average in ("none", "ema", "swa"), "average must be none, ema or swa"),
            (0 <= self.average_start < 1, "average_start must be in [0, 1)"),
            (0 < self.ema_decay < 1, "ema_decay must be in (0, 1)"),
            (self.crop is None or 8 <= self.crop <= self.input_size,
             f"crop must be between 8 and input_size ({self.input_size})"),
            (not (self.distill_targets and self.distill),
             "distill_targets and distill are exclusive: give the teachers or their "
             "out-of-fold logits, not both"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.fold is not None:
            from ferkit.data.folds import parse_fold
            parse_fold(self.fold)


def _read_mapping(p: Path) -> dict:
    """One recipe file's own mapping (its ``base`` not yet applied)."""
    if not p.is_file():
        raise ConfigError(f"{p}: recipe file not found")
    text = p.read_text()
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError("YAML recipes need PyYAML: pip install 'ferkit[train]'") from None
        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
    else:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: a recipe must be a mapping of option: value")
    return d


def merge_recipe(base: dict, over: dict) -> dict:
    """``over``'s options on top of ``base``'s, ``augment`` merged key by key."""
    out = {**base, **over}
    if isinstance(base.get("augment"), dict) and isinstance(over.get("augment"), dict):
        out["augment"] = {**base["augment"], **over["augment"]}
    return out


def load_recipe(path: str | Path, _seen: tuple = ()) -> dict:
    """Read a YAML or JSON recipe into a dict of TrainConfig keys.

    A recipe may name another with ``base: other.yaml`` (a path relative to its own folder):
    it then holds only what differs, its keys overriding the base's, ``augment`` key by key."""
    p = Path(path)
    d = _read_mapping(p)
    base = d.pop("base", None)
    if base is None:
        return d
    if not isinstance(base, str):
        raise ConfigError(f"{p}: base must be one recipe file's path")
    bp, seen = (p.parent / base).resolve(), (*_seen, p.resolve())
    if not bp.is_file():
        raise ConfigError(f"{p}: its base recipe {bp} was not found")
    if bp in seen:
        raise ConfigError(f"{p}: base {base} leads back to itself")
    return merge_recipe(load_recipe(bp, seen), d)
