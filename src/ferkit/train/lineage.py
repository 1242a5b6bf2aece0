"""The stages behind a training run: a run started ``init_from`` another run's checkpoint
continues that run's training, so its cost (wall time, epochs, the curve to a target
accuracy) is the sum over the chain of runs. Read-only; uses the JSON files each run writes
(config.json, summary.json, history.json), and the note `ferkit prune` leaves beside a
pruned checkpoint (a run started from it continues the wide run it was pruned from)."""
from __future__ import annotations

import json
from pathlib import Path

MAX_STAGES = 8
PRUNE_NOTE = "prune.json"


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def run_stages(run_dir: str | Path) -> list[dict]:
    """Stages of ``run_dir``, oldest first: ``{"run", "config", "summary", "history"}`` each.

    A parent is followed when the run's config names ``init_from`` and that checkpoint's
    folder holds a config.json; a missing parent ends the chain (the stage keeps its
    ``init_from`` so the gap is visible). A parent folder with only a prune note is a pruned
    checkpoint: the stage gets ``pruned_from`` and the chain goes on from the wide source."""
    stages, seen = [], set()
    run = Path(run_dir)
    while run is not None and len(stages) < MAX_STAGES and run.resolve() not in seen:
        seen.add(run.resolve())
        cfg = _read(run / "config.json")
        if cfg is None:
            break
        stage = {"run": str(run), "config": cfg, "summary": _read(run / "summary.json") or {},
                 "history": _read(run / "history.json") or []}
        stages.append(stage)
        run, pruned = _parent(cfg.get("init_from"), run)
        if pruned is not None:
            stage["pruned_from"] = pruned
    return stages[::-1]


def _parent(ckpt: str | None, child: Path) -> tuple[Path | None, dict | None]:
    """The run folder that trained ``ckpt`` (None if not found) and, when ``ckpt`` is a
    pruned checkpoint, its prune notes' wide width and source (the run looked up instead);
    a prune of a pruned checkpoint is followed note by note, the pruned ones kept as ``via``."""
    run, pruned, via = None, None, []
    while ckpt and len(via) < MAX_STAGES:
        run = _locate(ckpt, child)
        if run is not None:
            break
        noted = _locate(ckpt, child, PRUNE_NOTE)
        note = _read(noted / PRUNE_NOTE) if noted is not None else None
        if not note:
            break
        if pruned is not None:
            via.append(ckpt)
        pruned = {"width": note.get("width"), "source": note.get("source")}
        ckpt, child = note.get("source"), noted
    if pruned is not None and via:
        pruned["via"] = via
    return run, pruned


def _locate(ckpt: str, child: Path, name: str = "config.json") -> Path | None:
    """The folder of ``ckpt`` holding ``name`` (a run's config.json), with ckpt as the config
    wrote it: absolute, or relative to the folder training ran in (the working directory
    then, or an ancestor of the child run)."""
    p = Path(ckpt)
    bases = [Path()] if p.is_absolute() else [Path(), *child.resolve().parents[:3]]
    for base in bases:
        if (base / p).parent.joinpath(name).is_file():
            return (base / p).parent
    return None


def stage_summary(stages: list[dict]) -> list[dict]:
    """One small dict per stage for model cards."""
    return [{"run": Path(s["run"]).name, "init_from": s["config"].get("init_from"),
             "epochs": len(s["history"]) or s["config"].get("epochs"),
             "lr": s["config"].get("lr"), "best_epoch": s["summary"].get("best_epoch"),
             "best_val_acc": s["summary"].get("best_accuracy"),
             "train_seconds": s["summary"].get("train_seconds"),
             "hardware": s["summary"].get("hardware"),
             "distill": s["config"].get("distill"),
             **({"pruned_from": s["pruned_from"]} if "pruned_from" in s else {})}
            for s in stages]


def time_to_accuracy(stages: list[dict], target: float) -> dict:
    """Walk the concatenated per-epoch history: when val accuracy first reached ``target``
    (epoch counted over all stages, seconds of training summed), plus totals."""
    elapsed, epoch, reached, best, speeds = 0.0, 0, None, 0.0, []
    for s in stages:
        for h in s["history"]:
            epoch += 1
            elapsed += h["seconds"]
            best = max(best, h["val_acc"])
            speeds.append(h["images_per_s"])
            if reached is None and h["val_acc"] >= target:
                reached = {"epoch": epoch, "seconds": elapsed, "run": Path(s["run"]).name}
    speeds.sort()
    return {"reached": reached, "epochs": epoch, "best_val_acc": best, "total_seconds": elapsed,
            "stages": len(stages),
            "median_train_images_per_s": speeds[len(speeds) // 2] if speeds else None}
