"""Checkpoints: model weights + config + training state, written atomically."""
from __future__ import annotations

from pathlib import Path

import torch

from ferkit.errors import ModelError
from ferkit.io import atomic_path


def save(path: str | Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | Path) -> dict:
    """A classifier checkpoint (weights + model config)."""
    ck = load_raw(path)
    if not isinstance(ck, dict) or "model" not in ck or "model_config" not in ck:
        raise ModelError(f"{path}: not a ferkit checkpoint (no model/model_config)")
    return ck


def build_from_checkpoint(ck: dict):
    """Recreate the network of a checkpoint with its weights, in eval mode."""
    from ferkit.models import create_model
    mc = ck["model_config"]
    kw = {k: v for k, v in mc["kwargs"].items() if k != "num_classes"}
    model = create_model(mc["name"], mc["kwargs"]["num_classes"], mc["in_chans"], **kw)
    model.load_state_dict(ck["model"])
    return model.eval()


def load_raw(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """Any ferkit payload (e.g. a GAN run), with the keys it must have."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: checkpoint not found")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{p}: not a readable ferkit checkpoint ({exc.__class__.__name__})") \
            from None
    missing = [k for k in required if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise ModelError(f"{p}: not the expected checkpoint (missing {', '.join(missing)})")
    return ck


def load_model(model: str | Path | None):
    """(network, classes, model_config) from a .pt checkpoint, or from the PyTorch
    checkpoint shipped beside a model (shipped name or .onnx path, per its card)."""
    p = Path(str(model)) if model else None
    if p is not None and p.suffix == ".pt":
        ck = load(p)
    else:
        from ferkit.zoo.shipped import resolve
        ref = resolve(model)
        name = ref.card.get("checkpoint")
        if not name or not (ref.path.parent / name).is_file():
            raise ModelError(f"{ref.path}: no PyTorch checkpoint beside it; give a .pt "
                             f"checkpoint (e.g. RUN/best.pt)")
        ck = load(ref.path.parent / name)
    return build_from_checkpoint(ck), list(ck["classes"]), ck["model_config"]
