"""Evaluation plots (matplotlib, imported only when a plot is asked for)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.errors import ConfigError
from ferkit.io import atomic_path


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'ferkit[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def confusion_matrix_png(report: dict, path: Path, title: str = "") -> None:
    plt = _plt()
    cm = np.array(report["confusion_matrix"], float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    classes = report["classes"]
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(classes), 0.8 + 0.75 * len(classes)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted",
           ylabel="true", title=title or f"Confusion matrix (acc {report['accuracy']:.3f})")
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def reliability_png(report: dict, path: Path) -> None:
    plt = _plt()
    bins = report["reliability"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    centers = [(b["lo"] + b["hi"]) / 2 for b in bins]
    ax.bar(centers, [b["accuracy"] for b in bins], width=1 / 15, alpha=0.7,
           edgecolor="k", label="accuracy")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="C1",
            label="mean confidence")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
           title=f"Reliability (ECE {report['ece']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def selective_png(coverage, accuracy, path: Path) -> None:
    """Accuracy of the most confident faces as coverage shrinks."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(coverage, accuracy)
    for c in (0.8, 0.9):
        i = max(0, int(np.ceil(c * len(coverage))) - 1)
        ax.plot([c], [accuracy[i]], "o", color="C1")
        ax.annotate(f"{accuracy[i]:.3f} at {int(c * 100)}%", (c, accuracy[i]),
                    textcoords="offset points", xytext=(-60, 8), fontsize=8)
    ax.set(xlabel="coverage (share of faces answered)", ylabel="accuracy", xlim=(0, 1),
           title="Selective prediction")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
