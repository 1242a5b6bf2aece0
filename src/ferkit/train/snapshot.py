"""A training run in one compact file, to carry it to another machine or across a work tree
that is laid anew between sessions, and to resume it there with ``--resume``.

``pack`` keeps what ``--resume`` needs from RUN/last.pt with floating-point tensors in
float16 (half the size; a relative rounding of about 5e-4 on each weight), the averaged
weights only once averaging has started, and the run's small text files (history, sessions,
notes). It drops the optimizer's per-parameter state unless asked to keep it: SGD's momentum
rebuilds itself from the first step's gradient. Once averaging has started the file holds two
copies of the weights; ``averaged_only`` keeps only the averaged ones, and the run resumes
training from them (as SWA/EMA restarts do), which halves the file again. ``unpack`` writes
them back in float32 as RUN/last.pt (and best.pt when packed), atomically, and never over an
existing run; without a best.pt the first resumed epoch becomes the run's best so far (the
history keeps the earlier epochs' figures)."""
from __future__ import annotations

from pathlib import Path

import torch

from ferkit.errors import ConfigError
from ferkit.io import atomic_path
from ferkit.train import checkpoint

FORMAT = "ferkit-run-snapshot/1"
TEXT_MAX = 1 << 20     # run files carried as they are: history, sessions, notes, config


def _cast(obj, dtype):
    """``obj`` with every floating-point tensor in it cast to ``dtype``."""
    if torch.is_tensor(obj):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cast(v, dtype) for v in obj)
    return obj


def _averager_started(state) -> bool:
    return bool(state) and int(state.get("n_averaged", 0)) > 0


def _averaged_weights(averager: dict) -> dict:
    """The model's state dict held by an averager's state (its ``module.`` entries)."""
    return {k[len("module."):]: v for k, v in averager.items() if k.startswith("module.")}


def pack(run: str | Path, dest: str | Path, *, keep_optimizer: bool = False,
         with_best: bool = False, averaged_only: bool = False) -> dict:
    """Write RUN's resume state to ``dest``; returns a summary (epoch, best, bytes)."""
    run = Path(run)
    last = checkpoint.load_raw(run / "last.pt", ("model", "optimizer", "scheduler", "state"))
    opt = dict(last["optimizer"])
    if not keep_optimizer:
        opt["state"] = {}
    averager = last.get("averager")
    started = _averager_started(averager)
    from_average = averaged_only and started
    model = _averaged_weights(averager) if from_average else last["model"]
    if from_average:
        averager = {"n_averaged": averager["n_averaged"]}   # the weights are the model's
    snap = {**{k: last[k] for k in ("model_config", "classes", "config", "scheduler",
                                    "state", "reweighter")},
            "format": FORMAT, "model": _cast(model, torch.float16),
            "optimizer": _cast(opt, torch.float16), "model_is_average": from_average,
            "averager": _cast(averager, torch.float16) if started else None,
            "best": _cast(checkpoint.load(run / "best.pt"), torch.float16)
            if with_best and (run / "best.pt").is_file() else None,
            "files": {p.name: p.read_bytes() for p in sorted(run.iterdir())
                      if p.is_file() and p.suffix != ".pt" and p.stat().st_size <= TEXT_MAX}}
    checkpoint.save(dest, snap)
    st = last["state"]
    return {"epoch": st["epoch"], "best": st["best"], "best_epoch": st["best_epoch"],
            "bytes": Path(dest).stat().st_size, "files": sorted(snap["files"])}


def pack_best(run: str | Path, dest: str | Path) -> dict:
    """A finished run's RUN/best.pt with its floating-point tensors in float16: an ordinary
    checkpoint (loading it into a network casts back to float32), to keep a finished run's
    model (a distillation teacher, say) once its last.pt is no longer needed."""
    best = checkpoint.load(Path(run) / "best.pt")
    checkpoint.save(dest, _cast(best, torch.float16))
    return {"bytes": Path(dest).stat().st_size}


def _fresh_averager(model: dict, n_averaged=0) -> dict:
    """An averager's state holding a copy of ``model``, ``n_averaged`` updates in (0: not
    started)."""
    return {**{"module." + k: v.clone() for k, v in model.items()},
            "n_averaged": torch.as_tensor(n_averaged, dtype=torch.long)}


def unpack(snap_path: str | Path, run: str | Path) -> dict:
    """Recreate RUN from a snapshot; RUN must not hold a last.pt already."""
    run = Path(run)
    if (run / "last.pt").exists():
        raise ConfigError(f"{run / 'last.pt'}: exists; unpack into a new run folder")
    snap = checkpoint.load_raw(snap_path, ("format", "model", "state"))
    if snap["format"] != FORMAT:
        raise ConfigError(f"{snap_path}: not a {FORMAT} file ({snap['format']})")
    run.mkdir(parents=True, exist_ok=True)
    for name, data in snap["files"].items():
        if not (run / name).exists():
            with atomic_path(run / name) as tmp:
                Path(tmp).write_bytes(data)
    model = _cast(snap["model"], torch.float32)
    averager = snap["averager"]
    if snap.get("model_is_average"):        # the model is the average: copy it back in
        averager = _fresh_averager(model, averager["n_averaged"])
    elif averager:
        averager = _cast(averager, torch.float32)
    elif snap["config"].get("average", "none") != "none":
        averager = _fresh_averager(model)
    last = {k: snap[k] for k in ("model_config", "classes", "config", "scheduler", "state",
                                 "reweighter")}
    last.update(model=model, optimizer=_cast(snap["optimizer"], torch.float32),
                averager=averager)
    if snap.get("best") is not None:
        checkpoint.save(run / "best.pt", _cast(snap["best"], torch.float32))
    elif not (run / "best.pt").is_file():   # no best.pt: the next epoch writes one
        last["state"] = {**snap["state"], "best": -1.0, "best_epoch": -1}
    checkpoint.save(run / "last.pt", last)
    return {"epoch": snap["state"]["epoch"], "best": last["state"]["best"]}


def describe(snap_path: str | Path) -> str:
    snap = checkpoint.load_raw(snap_path, ("format", "state"))
    st = snap["state"]
    return (f"{snap_path}: epoch {st['epoch']}/{snap['config']['epochs']}, best "
            f"{st['best']:.4f} at epoch {st['best_epoch']}")
