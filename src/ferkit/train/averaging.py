"""Weight averaging over the end of a run: an exponential moving average updated every step
(EMA) or an equal average of the end-of-epoch weights (SWA), both through
``torch.optim.swa_utils.AveragedModel``. BatchNorm statistics are averaged with the weights
(``use_buffers=True``), so the averaged model needs no extra pass over the data."""
from __future__ import annotations

import math

from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverager:
    """Holds the averaged copy of ``model`` once epoch ``start`` is reached."""

    def __init__(self, model, kind: str, epochs: int, start: float, decay: float):
        self.kind = kind
        self.start_epoch = int(math.floor(start * epochs))
        fn = get_ema_multi_avg_fn(decay) if kind == "ema" else None
        self.avg = AveragedModel(model, multi_avg_fn=fn, use_buffers=True)

    def active(self, epoch: int) -> bool:
        """Whether averaging runs in (0-based) ``epoch``."""
        return epoch >= self.start_epoch

    def after_step(self, model, epoch: int) -> None:
        if self.kind == "ema" and self.active(epoch):
            self.avg.update_parameters(model)

    def after_epoch(self, model, epoch: int) -> None:
        if self.kind == "swa" and self.active(epoch):
            self.avg.update_parameters(model)

    @property
    def started(self) -> bool:
        return int(self.avg.n_averaged) > 0

    @property
    def module(self):
        return self.avg.module

    def state_dict(self) -> dict:
        return self.avg.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.avg.load_state_dict(state)


def make_averager(model, cfg) -> WeightAverager | None:
    if cfg.average == "none":
        return None
    return WeightAverager(model, cfg.average, cfg.epochs, cfg.average_start, cfg.ema_decay)
