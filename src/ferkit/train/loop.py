"""Tensor-level pieces of training: normalisation, batched prediction, soft-target loss,
the learning-rate schedule. No file I/O here."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_input(batch_u8: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (B, C, H, W) -> normalised float32."""
    x = batch_u8.float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """FaceArray images (N, H, W) or (N, H, W, 3) -> uint8 tensor (N, C, H, W)."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def predict_logits(model, images_u8: torch.Tensor, mean, std, *, batch_size: int = 256,
                   tta: bool = False, device: str = "cpu", channels_last: bool = True):
    """Logits for every image, optionally averaged with the horizontal flip."""
    model.eval()
    outs = []
    for i in range(0, len(images_u8), batch_size):
        x = to_input(images_u8[i:i + batch_size], mean, std).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x).float()
        if tta:
            logits = (logits + model(x.flip(3)).float()) / 2
        outs.append(logits.cpu())
    return torch.cat(outs)


def soft_targets(labels: np.ndarray, k: int, soft: np.ndarray | None = None) -> torch.Tensor:
    if soft is not None:
        return torch.from_numpy(soft.astype(np.float32))
    return F.one_hot(torch.from_numpy(labels), k).float()


def lr_lambda(schedule: str, total: int, warmup: int, min_ratio: float):
    """Multiplier of the base LR at a step: linear warm-up then cosine (or constant)."""
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        prog = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog))
    return f


def param_groups(params, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: biases and norm scales (1-D) are not decayed."""
    params = list(params)
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def class_weights(labels: np.ndarray, k: int, power: float) -> torch.Tensor:
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    w = np.where(counts > 0, (len(labels) / (k * np.maximum(counts, 1))) ** power, 0.0)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


@torch.no_grad()
def tencrop_logits(model, images_u8: torch.Tensor, mean, std, crop: int, *,
                   batch_size: int = 256, device: str = "cpu") -> torch.Tensor:
    """Ten-crop test-time augmentation (the four corner and the centre ``crop`` windows and
    their mirror images, logits averaged), for a model trained on random crops of that size.
    Ten passes per face: a research figure, not what a shipped model runs."""
    model.eval()
    h, w = images_u8.shape[-2:]
    offsets = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop),
               ((h - crop) // 2, (w - crop) // 2)]
    outs = []
    for i in range(0, len(images_u8), batch_size):
        x = to_input(images_u8[i:i + batch_size], mean, std).to(device)
        z = 0
        for top, left in offsets:
            v = x[..., top:top + crop, left:left + crop]
            z = z + model(v).float() + model(v.flip(3)).float()
        outs.append((z / (2 * len(offsets))).cpu())
    return torch.cat(outs)
