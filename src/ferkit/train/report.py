"""What a run writes about itself: history as CSV/JSON, the training-curve PNG, the
sessions of a run continued across sessions, the hardware it ran on and the faces the
reweighter down-weights."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ferkit.cpuinfo import cpu_stamp
from ferkit.io import atomic_path, write_json, write_text


def write_history(out: Path, history: list[dict]) -> None:
    write_json(out / "history.json", history)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    write_text(out / "history.csv", buf.getvalue())
    try:
        plot_curves(out / "curves.png", history)
    except ImportError:
        pass


def plot_curves(path: Path, history: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="val")
    a.set(xlabel="epoch", ylabel="loss", title="Loss")
    a.legend()
    b.plot(ep, [h["train_acc"] for h in history], label="train (augmented)")
    b.plot(ep, [h["val_acc"] for h in history], label="val accuracy")
    b.plot(ep, [h["val_macro_f1"] for h in history], label="val macro-F1")
    b.set(xlabel="epoch", title="Accuracy")
    b.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def record_session(out: Path, started: float, first_epoch: int, epoch: int,
                   train_seconds: float, info: dict | None = None) -> None:
    """Keep OUT/sessions.json: one row per invocation of a run (a first start or a
    ``--resume``), with its wall time and ``info`` (e.g. the CPU and precision of that
    invocation), so a run continued across sessions, and machines, says what each session
    spent and how. The row of the running invocation is rewritten after every epoch."""
    import json
    import time
    path = out / "sessions.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)) + f".{int(started * 1000) % 1000:03d}"
    rows = [r for r in rows if r.get("started_utc") != stamp]
    rows.append({"started_utc": stamp, "first_epoch": first_epoch + 1, "last_epoch": epoch,
                 "wall_seconds": round(time.time() - started, 1),
                 "train_seconds_total": round(train_seconds, 1), **(info or {})})
    write_json(path, rows)


def write_downweighted(path: Path, rw, train) -> None:
    """The faces the reweighter currently down-weights, hardest first."""
    idx = np.nonzero(rw.low)[0]
    idx = idx[np.argsort(-rw.ema[idx])]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "loss_ema"])
        for i in idx:
            w.writerow([train.paths[i], train.classes[train.labels[i]], f"{rw.ema[i]:.4f}"])


def hardware(cfg, processes: int = 1) -> dict:
    import torch

    info = {"device": cfg.device, "threads": cfg.threads, **cpu_stamp(),
            "torch": torch.__version__}
    if processes > 1:
        info["processes"] = processes
    if cfg.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
