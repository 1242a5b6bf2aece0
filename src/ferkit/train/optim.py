"""The optimiser of a run: AdamW, or SGD with Nesterov momentum, optionally wrapped in
sharpness-aware minimisation (SAM: Foret et al. 2021, through the `pytorch_optimizer`
package). SAM takes each step from the gradient at the worst nearby weights (within radius
``rho``), which the SAM paper finds most useful under label noise; it costs a second forward
and backward pass per step."""
from __future__ import annotations

from typing import Callable

import torch


def make_optimizer(groups: list[dict], cfg) -> torch.optim.Optimizer:
    """The optimiser for parameter groups (per-group weight decay) under a TrainConfig."""
    if cfg.optimizer == "sgd":
        base = torch.optim.SGD
        kw = {"lr": cfg.lr, "momentum": cfg.momentum, "nesterov": cfg.momentum > 0}
    else:
        base, kw = torch.optim.AdamW, {"lr": cfg.lr}
    if not cfg.sam_rho:
        return base(groups, **kw)
    from pytorch_optimizer import SAM
    return SAM(groups, base, rho=cfg.sam_rho, adaptive=cfg.sam_adaptive, **kw)


def is_sam(opt) -> bool:
    return hasattr(opt, "first_step") and hasattr(opt, "second_step")


def sam_update(opt, model: torch.nn.Module, loss_again: Callable[[], torch.Tensor]) -> None:
    """The SAM step once the first pass's gradients are in: move to the perturbed weights,
    take the gradient there (BatchNorm running statistics left as the first pass set them),
    come back and let the base optimiser step with it. Through ``opt.step`` so that a
    learning-rate scheduler sees the step."""
    from pytorch_optimizer import disable_running_stats, enable_running_stats

    def closure():
        disable_running_stats(model)
        try:
            loss = loss_again()
            loss.backward()
        finally:
            enable_running_stats(model)
        return loss

    opt.step(closure)
