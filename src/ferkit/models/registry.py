"""Model registry in the timm style: each variant carries its input config."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from ferkit.errors import ModelError


@dataclass(frozen=True)
class ModelConfig:
    """What a model expects as input; copied into checkpoints and model cards."""

    name: str
    input_size: int = 48
    in_chans: int = 1
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_REGISTRY: dict[str, tuple[Callable, dict]] = {}


def register(name: str, **defaults):
    """Decorator: register a builder ``fn(num_classes, in_chans, **kwargs)`` under name."""
    def deco(fn):
        _REGISTRY[name] = (fn, defaults)
        return fn
    return deco


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_defaults(name: str) -> dict:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return dict(_REGISTRY[name][1])


def create_model(name: str, num_classes: int = 7, in_chans: int = 1, **kwargs):
    """Build a registered network. Keyword arguments override the variant's defaults
    (e.g. ``width=48``, ``norm='group'``, ``dropout=0.3``). The returned module has a
    ``config`` attribute (ModelConfig) and ``features(x)`` / ``head`` for later use by
    Grad-CAM, feature caches and MC dropout."""
    defaults = model_defaults(name)
    fn = _REGISTRY[name][0]
    params = {**defaults, **kwargs}
    input_size = params.pop("input_size", 48)
    try:
        model = fn(num_classes=num_classes, in_chans=in_chans, **params)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: bad option ({exc})") from None
    mean = (0.5,) * in_chans
    std = (0.25,) * in_chans
    model.config = ModelConfig(name, input_size, in_chans, mean, std,
                               {"num_classes": num_classes, **kwargs})
    return model


def count_macs(model, input_size: int = 48, in_chans: int = 1) -> int:
    """Multiply-accumulates of one forward pass on one face (torch's FLOP counter / 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_chans, input_size, input_size))
    model.train(was_training)
    return int(counter.get_total_flops() // 2)
