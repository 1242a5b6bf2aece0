"""Knowledge distillation from one or several teacher checkpoints, their softened
probabilities averaged.

``offline``: each teacher scores the clean train faces once (flip TTA) before the first
epoch; the targets are fixed. ``online``: the teachers score every augmented, mixed batch
the student sees ("function matching", Beyer et al. 2022), so the targets follow the
augmentation; it costs a teacher forward pass per step and needs teachers of the student's
input size.

A teacher is a training checkpoint (.pt, run in PyTorch, bf16 when the run is) or an
exported model (.onnx with its card, run in ONNX Runtime): an int8 export of a w64 net
scores a batch in about 60% of the time of its bf16 PyTorch forward pass
(benchmarks/teacher_speed.py), and those passes are what online distillation adds to a step.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ferkit.data import FaceArray
from ferkit.data.images import fit_size
from ferkit.errors import ConfigError, ModelError
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
            if str(path).lower().endswith(".onnx"):
                net, got, tm = load_onnx_teacher(path, torch.get_num_threads())
            else:
                ck = checkpoint.load(path)
                net = checkpoint.build_from_checkpoint(ck).to(device)
                got, tm = ck["classes"], ck["model_config"]
                for p in net.parameters():
                    p.requires_grad_(False)
            if got != classes:
                raise ConfigError(f"{path}: teacher classes {got} differ "
                                  f"from the training classes {classes}")
            self.members.append((path, net, tm))

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
                logits = net(xt).float().to(x.device)
            probs.append(torch.softmax(logits / self.temperature, 1))
        return torch.stack(probs).mean(0)


class OnnxTeacher(torch.nn.Module):
    """An exported model (float or int8 ONNX) behind the nn.Module call of a teacher:
    float32 NCHW in, float32 logits out, on the CPU. Its ONNX Runtime threads do not spin
    between calls, so they leave the cores to the student's step."""

    def __init__(self, path, threads: int):
        super().__init__()
        from ferkit.zoo.classify import open_session

        try:
            self.session = open_session(path, threads, spin=False)
        except ModelError as exc:
            raise ConfigError(f"teacher {exc}") from None
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(self.session.run(["logits"], {self.input_name: arr})[0])


def load_onnx_teacher(path, threads: int):
    """(OnnxTeacher, classes, model config) of an exported model and its card."""
    from ferkit.zoo.shipped import resolve

    try:
        card = resolve(path).card
    except ModelError as exc:
        raise ConfigError(f"teacher {exc}") from None
    tm = {"input_size": int(card["input_size"]), "mean": card["mean"], "std": card["std"]}
    return OnnxTeacher(path, threads), list(card["labels"]), tm


def _col(v, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
