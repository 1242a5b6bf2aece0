"""Shipped models: ONNX files + model cards in ferkit/assets, looked up by name."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ferkit.errors import ModelError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT = "default"


@dataclass(frozen=True)
class ModelRef:
    """An ONNX model and its card (dict)."""

    name: str
    path: Path
    card: dict

    @property
    def classes(self) -> list[str]:
        return list(self.card["labels"])

    def summary(self) -> dict:
        c = self.card
        return {"name": self.name, "path": str(self.path), "classes": self.classes,
                "input_size": c["input_size"], "channels": c["channels"],
                "architecture": c.get("architecture"),
                "val_accuracy": c.get("metrics", {}).get("val", {}).get("accuracy"),
                "faces_per_s": c.get("speed", {}).get("faces_per_s_1thread_batch64"),
                "checkpoint": c.get("checkpoint")}


def read_card(onnx_path: Path) -> dict:
    card_path = onnx_path.with_suffix(".json")
    if not card_path.is_file():
        raise ModelError(f"{onnx_path}: no model card {card_path.name} beside it; export the "
                         f"model with `ferkit export` to write one")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{card_path}: model card is not valid JSON ({exc})") from None
    for key in ("labels", "input_size", "channels", "mean", "std"):
        if key not in card:
            raise ModelError(f"{card_path}: model card lacks {key!r}")
    return card


def shipped() -> list[ModelRef]:
    refs = []
    for p in sorted(ASSETS.glob("*.onnx")):
        refs.append(ModelRef(p.stem, p, read_card(p)))
    order = {"default": 0, "default_fp32": 1, "fast": 2}
    return sorted(refs, key=lambda r: (order.get(r.name, len(order)), r.name))


def resolve(model: str | Path | None) -> ModelRef:
    """A shipped model name (``default``, ``fast``, ...) or a path to an ``.onnx`` file."""
    name = str(model) if model else DEFAULT
    p = Path(name)
    if p.suffix.lower() == ".onnx" or p.exists():
        if not p.is_file():
            raise ModelError(f"{p}: model file not found")
        if p.suffix.lower() != ".onnx":
            raise ModelError(f"{p}: expected an .onnx model (export a checkpoint with "
                             f"`ferkit export CKPT --out model.onnx`)")
        return ModelRef(p.stem, p, read_card(p))
    cand = ASSETS / f"{name}.onnx"
    if not cand.is_file():
        names = ", ".join(r.name for r in shipped()) or "none installed"
        raise ModelError(f"no shipped model named {name!r} (shipped: {names}); or give a path "
                         f"to an .onnx file")
    return ModelRef(name, cand, read_card(cand))
