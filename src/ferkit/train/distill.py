"""Knowledge distillation from one or several teacher checkpoints, their softened
probabilities averaged.

``offline``: each teacher scores the clean train faces once (flip TTA) before the first
epoch; the targets are fixed. ``online``: the teachers score every augmented, mixed batch
the student sees ("function matching", Beyer et al. 2022), so the targets follow the
augmentation; it costs a teacher forward pass per step and needs teachers of the student's
input size.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ferkit.data import FaceArray
from ferkit.data.images import fit_size
from ferkit.errors import ConfigError
from ferkit.train import checkpoint
from ferkit.train.loop import images_to_tensor, predict_logits

log = logging.getLogger(__name__)
MODES = ("offline", "online")


class Teachers:
    """The teachers of a run, in eval mode, without gradients."""

    def __init__(self, paths: list[str], classes: list[str], *, temperature: float,
                 device: str = "cpu", bf16: bool = False, channels_last: bool = True):
        self.temperature, self.device = temperature, device
        self.bf16, self.channels_last = bf16, channels_last
        self.members = []
        for path in paths:
            ck = checkpoint.load(path)
            if ck["classes"] != classes:
                raise ConfigError(f"{path}: teacher classes {ck['classes']} differ "
                                  f"from the training classes {classes}")
            net = checkpoint.build_from_checkpoint(ck).to(device)
            for p in net.parameters():
                p.requires_grad_(False)
            self.members.append((path, net, ck["model_config"]))

    def _autocast(self):
        return torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.bf16)

    def offline(self, train: FaceArray, xtr: torch.Tensor) -> torch.Tensor:
        """Averaged softened probabilities (flip TTA) on the clean train faces; a teacher of
        another input size (e.g. 64 px for a 48-px student) sees the faces at its size."""
        probs = []
        for path, net, tm in self.members:
            log.info("distillation: teacher %s on %d faces", path, len(train))
            x = xtr
            if tm["input_size"] != xtr.shape[-1]:
                x = images_to_tensor(np.stack([fit_size(im, tm["input_size"])
                                               for im in train.images]))
            with self._autocast():
                logits = predict_logits(net, x, tm["mean"], tm["std"], tta=True,
                                        device=self.device, channels_last=self.channels_last)
            probs.append(torch.softmax(logits / self.temperature, 1))
        return torch.stack(probs).mean(0)

    def check_online(self, input_size: int) -> None:
        for path, _, tm in self.members:
            if tm["input_size"] != input_size:
                raise ConfigError(f"{path}: online distillation needs teachers of the "
                                  f"student's input size ({input_size} px), not "
                                  f"{tm['input_size']}; use distill_mode: offline")

    @torch.no_grad()
    def online(self, x: torch.Tensor, mean, std) -> torch.Tensor:
        """Averaged softened probabilities on a batch already normalised with the student's
        ``mean``/``std`` (augmented and mixed as the student sees it)."""
        raw = x.float() * _col(std, x) + _col(mean, x)
        probs = []
        for _, net, tm in self.members:
            xt = (raw - _col(tm["mean"], x)) / _col(tm["std"], x)
            if self.channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits = net(xt).float()
            probs.append(torch.softmax(logits / self.temperature, 1))
        return torch.stack(probs).mean(0)


def _col(v, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
