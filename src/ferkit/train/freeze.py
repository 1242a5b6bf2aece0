"""Fine-tuning only part of a network: the head, the last block + head, or everything.
Frozen parts run in eval mode, so their BatchNorm statistics never move."""
from __future__ import annotations

from torch import nn

TRAINABLE = ("all", "last-block", "head")


def trainable_parameters(model: nn.Module, which: str) -> list[nn.Parameter]:
    """Freeze everything but the chosen part; return what stays trainable."""
    if which not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, not {which!r}")
    for p in model.parameters():
        p.requires_grad_(which == "all")
    if which == "all":
        return list(model.parameters())
    params = []
    for part in trainable_parts(model, which):
        for p in part.parameters():
            p.requires_grad_(True)
            params.append(p)
    return params


def trainable_parts(model: nn.Module, which: str) -> list[nn.Module]:
    parts = [model.head]
    if which == "last-block":
        parts.append(model.features[-1])
    return parts


def train_mode(model: nn.Module, which: str) -> None:
    """model.train() for the trainable part (and dropout), eval() for the frozen rest."""
    if which == "all":
        model.train()
        return
    model.eval()
    model.dropout.train()
    for part in trainable_parts(model, which):
        part.train()
