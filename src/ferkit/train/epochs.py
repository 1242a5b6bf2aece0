"""The epoch loop every training mode runs: resume from OUT/last.pt, epochs with timing,
validation, history (JSON, CSV, curves), best/last checkpoints (atomic), per-session wall
time and early stopping. What one epoch does is the step's business (see TrainStep); under
torchrun only rank 0 writes."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

from ferkit.train import checkpoint
from ferkit.train.report import record_session, write_history

log = logging.getLogger(__name__)


class TrainStep(Protocol):
    def load(self, last: dict) -> None: ...            # restore from a last.pt
    def train_epoch(self, epoch: int) -> dict: ...      # train statistics
    def evaluate(self, epoch: int) -> tuple[dict, str]: ...   # (val report, which weights)
    def history_row(self, epoch: int, stats: dict, rep: dict, which: str,
                    seconds: float) -> dict: ...
    def best_payload(self, rep: dict, which: str, epoch: int) -> dict: ...
    def last_payload(self, state: dict) -> dict: ...
    def after_epoch(self, out: Path) -> None: ...       # extra files of the mode


def new_state(best: float = -1.0) -> dict:
    return {"epoch": 0, "best": best, "best_epoch": -1, "history": [], "elapsed": 0.0,
            "stale": 0}


def run_epochs(step: TrainStep, out: Path, epochs: int, *, resume: bool, select_metric: str,
               patience: int = 0, main: bool = True, started: float | None = None,
               stop_after: int | None = None, best: float = -1.0,
               session: dict | None = None) -> dict:
    """Train ``step`` up to ``epochs``; returns the loop state (history, best, elapsed).
    ``stop_after`` trains at most that many epochs in this call (a time-boxed session that
    a later ``resume`` continues). ``best`` is the score an epoch must beat to be saved as
    best.pt (a fine-tuning run keeps its starting model unless an epoch beats it). A step
    with a ``write_history(out, state)`` method writes its own history files. ``session``
    goes into this invocation's row of OUT/sessions.json."""
    started = started or time.time()
    state = new_state(best)
    last = out / "last.pt"
    if resume and last.exists():
        ck = checkpoint.load(last)
        step.load(ck)
        state = ck["state"]
        log.info("resumed from %s at epoch %d", last, state["epoch"])
    first = state["epoch"]
    end = epochs if stop_after is None else min(epochs, first + stop_after)
    for epoch in range(first, end):
        t0 = time.time()
        stats = step.train_epoch(epoch)
        rep, which = step.evaluate(epoch)
        dt = time.time() - t0
        state["elapsed"] += dt
        row = step.history_row(epoch, stats, rep, which, dt)
        state["history"].append(row)
        log.info("epoch %d/%d loss %.3f train %.3f val %.4f f1 %.4f (%.0fs)", epoch + 1, epochs,
                 row.get("train_loss", float("nan")), row.get("train_acc", float("nan")),
                 rep["accuracy"], rep["macro_f1"], dt)
        state["epoch"] = epoch + 1
        improved = rep[select_metric] > state["best"]
        if improved:
            state.update(best=rep[select_metric], best_epoch=epoch + 1, stale=0)
        else:
            state["stale"] += 1
        if main:
            if improved:
                checkpoint.save(out / "best.pt", step.best_payload(rep, which, epoch))
            checkpoint.save(last, step.last_payload(state))
            if hasattr(step, "write_history"):
                step.write_history(out, state)
            else:
                write_history(out, state["history"])
            record_session(out, started, first, epoch + 1, state["elapsed"], session)
            step.after_epoch(out)
        if patience and state["stale"] >= patience:
            log.info("early stop: no improvement for %d epochs", patience)
            break
    return state
