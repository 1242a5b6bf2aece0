"""Semi-supervised pseudo-labelling in rounds. Each round the current model labels every
unlabelled face; faces whose MC-dropout mean confidence passes ``threshold`` and whose
mutual information (epistemic uncertainty) stays under ``max_mutual_info`` are kept, at most
``class_cap`` of the selection per class (so happy cannot take over), merged with the
labelled data, and the model is fine-tuned at a lower learning rate. The best round on val
wins. When the unlabelled folder has hidden labels (class sub-folders), their purity is
logged per round — never used for selection.

Options beyond the classic recipe (benchmarks/semi_supervised.py compares them):
- ``calibrate``: confidences come from the temperature-scaled MC mean (T fitted on val each
  round), so a threshold means the same for a model trained with label smoothing (which
  caps its raw softmax) as for one without.
- ``curriculum``: instead of one absolute threshold, round r keeps the ``r * curriculum``
  most confident share of each predicted class (curriculum labelling, Cascante-Bonilla et
  al. 2021): every class contributes from round one, and the easiest faces come first.
- ``soft``: the selected faces are trained on the calibrated MC-mean distribution instead of
  its argmax, so an ambiguous face teaches its ambiguity.
- ``restart``: every round fine-tunes the starting model rather than the previous round's,
  so one round's pseudo-label errors are not baked into the next one's weights."""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ferkit.data import FaceArray, load_dataset, split_if_present
from ferkit.data.images import IMAGE_EXTS, read_face
from ferkit.errors import ConfigError, DataError
from ferkit.io import write_json
from ferkit.labels import ClassSpec
from ferkit.train import checkpoint
from ferkit.train.config import TrainConfig, merge_recipe
from ferkit.train.loop import images_to_tensor, to_input
from ferkit.train.trainer import Trainer, concat

log = logging.getLogger(__name__)


@dataclass
class PseudoConfig:
    rounds: int = 3
    threshold: float = 0.95
    max_mutual_info: float = 0.05
    class_cap: float = 0.3            # at most this share of one round's selection per class
    mc_passes: int = 10
    epochs_per_round: int = 5
    lr_factor: float = 0.3            # fine-tuning lr = recipe lr * lr_factor
    calibrate: bool = True            # temperature-scale (fitted on val) before selecting
    curriculum: float = 0.0           # > 0: keep the top r*curriculum share per class in round r
    soft: bool = False                # train on the MC-mean distribution, not its argmax
    restart: bool = False             # each round starts from the initial model

    def validate(self):
        if not 0.0 <= self.curriculum <= 1.0:
            raise ConfigError(f"curriculum must be in [0, 1], got {self.curriculum}")
        if self.rounds < 1 or self.mc_passes < 1:
            raise ConfigError("rounds and mc_passes must be at least 1")


def load_unlabeled(path: str | Path, size: int, channels: int, classes) -> FaceArray:
    """Every image under ``path``; labels from class sub-folders when present (hidden
    labels, for purity only), else -1."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DataError(f"{root}: no images found (run `ferkit preprocess` on raw photos first)")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index.get(f.parent.name.lower(), -1) if f.parent != root else -1
                       for f in files], np.int64)
    images = np.stack([read_face(f, size, channels) for f in files])
    return FaceArray(images, labels, list(classes), [str(f) for f in files])


@torch.no_grad()
def mc_predict(model, images_u8, mean, std, passes: int, seed: int,
               temperature: float = 1.0) -> dict:
    """MC dropout with a shared backbone: one embedding pass, ``passes`` dropout+head passes;
    each pass's logits divided by ``temperature``."""
    from ferkit.evaluation.calibration import mc_statistics
    model.eval()
    g = torch.Generator().manual_seed(seed)
    p = model.dropout.p
    samples = []
    embs = []
    for i in range(0, len(images_u8), 512):
        x = to_input(images_u8[i:i + 512], mean, std)
        embs.append((model.embed(x) + model.embed(x.flip(3))) / 2)
    emb = torch.cat(embs)
    for _ in range(passes):
        mask = (torch.rand(emb.shape, generator=g) >= p).float() / max(1 - p, 1e-6)
        samples.append(torch.softmax(model.project(model.head(emb * mask)) / temperature,
                                     1).numpy())
    return mc_statistics(np.stack(samples))


def select(stats: dict, pc: PseudoConfig, k: int, round_: int = 1) -> np.ndarray:
    """Indices kept this round: confident, certain, and class-capped. With ``curriculum``,
    "confident" is relative: the top ``round_ * curriculum`` share of each predicted class."""
    conf = stats["mean"].max(1)
    pred = stats["mean"].argmax(1)
    certain = stats["mutual_info"] <= pc.max_mutual_info
    if pc.curriculum > 0:
        share = min(1.0, round_ * pc.curriculum)
        keep = []
        for c in range(k):
            idx = np.nonzero(pred == c)[0]
            idx = idx[np.argsort(-conf[idx], kind="stable")][:int(round(share * len(idx)))]
            keep.append(idx[certain[idx]])
        return np.sort(np.concatenate(keep)).astype(np.int64)
    ok = np.nonzero((conf >= pc.threshold) & certain)[0]
    if len(ok) == 0:
        return ok
    n = np.bincount(pred[ok], minlength=k)
    m = class_quota(n, pc.class_cap)
    keep = []
    for c in range(k):
        idx = ok[pred[ok] == c]
        keep.append(idx[np.argsort(-conf[idx])][:m])
    return np.sort(np.concatenate(keep))


def class_quota(n: np.ndarray, cap: float) -> int:
    """Largest per-class quota m with min(n_c, m) <= cap * sum_c min(n_c, m) for all c
    (water-filling). When too few classes are present for ``cap`` to hold, every class gets
    the count of the rarest present class, so none dominates."""
    best = 0
    for m in range(1, int(n.max()) + 1):
        total = np.minimum(n, m).sum()
        if np.minimum(n, m).max() <= cap * total:
            best = m
    return best or int(n[n > 0].min())


@torch.no_grad()
def _val_logits(model, val_ds: FaceArray, mc) -> np.ndarray:
    from ferkit.train.loop import predict_logits
    return predict_logits(model, images_to_tensor(val_ds.images), mc["mean"], mc["std"],
                          tta=True, channels_last=False).numpy()


# training options that the rounds set themselves, so a --recipe may not
_SET_BY_ROUNDS = {"data", "val_data", "epochs", "distill", "classes", "class_map",
                  "negative_vs_rest", "soft_labels", "init_from", "extra_data"}


def round_config(start: dict, pc: PseudoConfig, overrides: dict | None = None,
                 source: str = "recipe", **fixed) -> TrainConfig:
    """The training config of every round: the starting model's recipe, with ``overrides``
    on top (``augment`` merged key by key; ``lr`` is the rate that ``lr_factor`` scales;
    warm-up off unless overridden), at ``pc.epochs_per_round`` epochs, then ``fixed`` (what
    the caller sets: data, classes, ...). Errors name ``source``."""
    ov = dict(overrides or {})
    clash = sorted(_SET_BY_ROUNDS & set(ov))
    if clash:
        raise ConfigError(f"{source}: {', '.join(clash)} cannot be set here: the rounds set "
                          f"them (use --epochs-per-round, --soft, --labeled, --val)")
    if not isinstance(ov.get("augment", {}), dict):
        raise ConfigError(f"{source}: augment must be a mapping of option: value")
    base = merge_recipe(start, ov)
    base.update(epochs=pc.epochs_per_round, lr=base.get("lr", 2e-3) * pc.lr_factor,
                warmup_epochs=ov.get("warmup_epochs", 0.0), distill=None, init_from=None,
                extra_data=None, **fixed)
    try:
        return TrainConfig.from_dict(base)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def pseudo_label(model_ckpt: str | Path, labeled: str | Path, unlabeled: str | Path,
                 out_dir: str | Path, pc: PseudoConfig | None = None, *,
                 val: str | Path | None = None, progress: bool = True,
                 overrides: dict | None = None, source: str | None = None) -> dict:
    """The rounds on faces read from disk; ``overrides``: training options for the rounds
    over the starting model's recipe (see ``round_config``; ``source`` names them in
    errors)."""
    pc = pc or PseudoConfig()
    pc.validate()
    ck = checkpoint.load(model_ckpt)
    start = ck.get("config") or {}
    cfg = round_config(start, pc, overrides, source or str(model_ckpt), data=str(labeled),
                       val_data=str(val) if val else start.get("val_data"),
                       classes=",".join(ck["classes"]), class_map=None,
                       negative_vs_rest=False, soft_labels=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lab, unl, val_ds = load_semi_inputs(ck, labeled, unlabeled, val)
    return pseudo_label_arrays(model_ckpt, lab, unl, val_ds, out, pc, progress=progress,
                               cfg=cfg)


def load_semi_inputs(ck: dict, labeled, unlabeled, val=None):
    """(labelled, unlabelled, val) faces at the checkpoint's size, channels and classes; val
    defaults to the checkpoint recipe's val data (or the val split of its training data)."""
    classes, mc = ck["classes"], ck["model_config"]
    kw = dict(size=mc["input_size"], channels=mc["in_chans"], spec=ClassSpec(tuple(classes)))
    lab = load_dataset(labeled, split_if_present(labeled, "train"), **kw)
    conf = ck.get("config") or {}
    val_src = val or conf.get("val_data") or conf["data"]
    val_ds = load_dataset(val_src, split_if_present(val_src, "val"), **kw)
    unl = load_unlabeled(unlabeled, mc["input_size"], mc["in_chans"], classes)
    return lab, unl, val_ds


def _resume(out: Path, pc: PseudoConfig) -> tuple[list, dict | None]:
    """The rounds an earlier run in ``out`` logged with the same options (any round count),
    and the weights the next round starts from; ([], None) when there is nothing to reuse."""
    log_path = out / "rounds.json"
    if not log_path.is_file():
        return [], None
    old = json.loads(log_path.read_text())
    strip = lambda d: {k: v for k, v in d.items() if k != "rounds"}  # noqa: E731
    done = old["rounds"][:pc.rounds]
    if strip(old["config"]) != strip(dataclasses.asdict(pc)) or not done or \
            not (out / f"round{len(done)}" / "best.pt").is_file():
        return [], None
    log.info("resuming after round %d of %s", len(done), out)
    return done, checkpoint.load(out / f"round{len(done)}" / "best.pt")["model"]


def _best(start: float, model_ckpt, rounds: list, out: Path) -> dict:
    """The best of the starting model (round 0) and the rounds, on val accuracy."""
    best = {"round": 0, "val_accuracy": start, "path": str(model_ckpt)}
    for row in rounds:
        if row["val_accuracy"] > best["val_accuracy"]:
            best = {"round": row["round"], "val_accuracy": row["val_accuracy"],
                    "path": str(out / f"round{row['round']}" / "best.pt")}
    return best


def pseudo_label_arrays(model_ckpt: str | Path, lab: FaceArray, unl: FaceArray,
                        val_ds: FaceArray, out_dir: str | Path, pc: PseudoConfig | None = None,
                        *, progress: bool = True, cfg: TrainConfig | None = None) -> dict:
    """The rounds on in-memory faces (``unl.labels`` are hidden labels or -1)."""
    from ferkit.evaluation.calibration import fit_temperature
    pc = pc or PseudoConfig()
    pc.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ck = checkpoint.load(model_ckpt)
    classes, mc = ck["classes"], ck["model_config"]
    if cfg is None:
        cfg = round_config(ck.get("config") or {}, pc, source=str(model_ckpt))
    xun = images_to_tensor(unl.images)
    model = checkpoint.build_from_checkpoint(ck)
    initial = ck["model"]
    zval = _val_logits(model, val_ds, mc)
    start = float((zval.argmax(1) == val_ds.labels).mean())
    rounds, resumed = _resume(out, pc)
    state = initial if resumed is None else resumed
    for r in range(len(rounds) + 1, pc.rounds + 1):
        model.load_state_dict(state)
        if r > 1:
            zval = _val_logits(model, val_ds, mc)
        t = fit_temperature(zval, val_ds.labels) if pc.calibrate else 1.0
        stats = mc_predict(model, xun, mc["mean"], mc["std"], pc.mc_passes, cfg.seed + r, t)
        keep = select(stats, pc, len(classes), r)
        pseudo = stats["mean"].argmax(1)[keep]
        counts = np.bincount(pseudo, minlength=len(classes))
        hidden = unl.labels[keep]
        purity = float((hidden == pseudo)[hidden >= 0].mean()) if (hidden >= 0).any() else None
        taken = unl.subset(keep)
        taken.labels = pseudo
        if pc.soft:
            taken.soft = stats["mean"][keep].astype(np.float32)
        merged = concat(lab, taken)
        res = Trainer(dataclasses.replace(cfg, seed=cfg.seed + r, soft_labels=pc.soft),
                      out / f"round{r}", progress=progress, splits=(merged, val_ds),
                      init_state=initial if pc.restart else state).fit()
        state = checkpoint.load(out / f"round{r}" / "best.pt")["model"]
        row = {"round": r, "selected": int(len(keep)), "of": len(unl), "temperature": t,
               "per_class": {c: int(n) for c, n in zip(classes, counts)},
               "purity": purity, "val_accuracy": res.val_report["accuracy"],
               "val_macro_f1": res.val_report["macro_f1"]}
        rounds.append(row)
        log.info("round %d: kept %d/%d faces %s purity %s val %.4f", r, len(keep), len(unl),
                 row["per_class"], purity, row["val_accuracy"])
        write_json(out / "rounds.json", {"config": dataclasses.asdict(pc), "start": start,
                                         "rounds": rounds,
                                         "best": _best(start, model_ckpt, rounds, out)})
    best = _best(start, model_ckpt, rounds, out)
    if best["round"] > 0:
        shutil.copy(best["path"], out / "best.pt")
    return {"start": start, "rounds": rounds, "best": best}
