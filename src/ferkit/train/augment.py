"""Batch augmentation on tensors: flip, rotation, scale/shift (random crops), random
erasing, photometric jitter, mixup and cutmix. One affine warp per batch does flip,
rotation, scale and shift together, so augmentation costs little next to the network."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    flip: bool = True
    rotate: float = 15.0          # degrees, uniform in [-rotate, rotate]
    scale: float = 0.15           # zoom factor in [1 - scale, 1 + scale]
    shift: float = 0.10           # fraction of the image, each axis
    erase_p: float = 0.5          # random erasing probability per image
    erase_area: tuple[float, float] = (0.02, 0.2)
    mixup: float = 0.0            # Beta(alpha, alpha); 0 disables
    cutmix: float = 0.0
    mix_p: float = 0.5            # share of batches mixed when mixup/cutmix is on

    @property
    def mixes(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0


def geometric(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random flip + rotation + scale + shift for each image of a (B, C, H, W) batch."""
    b = x.shape[0]
    u = lambda: torch.rand(b, generator=g) * 2 - 1  # noqa: E731
    ang = u() * math.radians(cfg.rotate)
    s = 1.0 + u() * cfg.scale
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0) if cfg.flip \
        else torch.ones(b)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos * flip, -sin, u() * cfg.shift * 2], 1),
                         torch.stack([sin * flip, cos, u() * cfg.shift * 2], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def erase(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random erasing: a rectangle per chosen image filled with noise."""
    b, _, h, w = x.shape
    area = torch.empty(b).uniform_(*cfg.erase_area, generator=g) * h * w
    ratio = torch.exp(torch.empty(b).uniform_(math.log(0.3), math.log(3.3), generator=g))
    eh = (area * ratio).sqrt().clamp(1, h)
    ew = (area / ratio).sqrt().clamp(1, w)
    y0 = torch.rand(b, generator=g) * (h - eh)
    x0 = torch.rand(b, generator=g) * (w - ew)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    m = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1)) &
         (xs >= x0.view(b, 1, 1)) & (xs < (x0 + ew).view(b, 1, 1)))
    m &= (torch.rand(b, generator=g) < cfg.erase_p).view(b, 1, 1)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
    return torch.where(m.unsqueeze(1), noise, x)


def photometric(x: torch.Tensor, brightness: float, contrast: float,
                g: torch.Generator) -> torch.Tensor:
    """Per-image contrast in [1 - contrast, 1 + contrast] about the image mean, then a
    brightness shift in [-brightness, brightness] (in units of the normalised input)."""
    b = x.shape[0]
    c = 1.0 + (torch.rand(b, 1, 1, 1, generator=g) * 2 - 1) * contrast
    s = (torch.rand(b, 1, 1, 1, generator=g) * 2 - 1) * brightness
    m = x.mean((1, 2, 3), keepdim=True)
    return (x - m) * c.to(x.dtype) + m + s.to(x.dtype)


def mix(x: torch.Tensor, target: torch.Tensor, cfg: AugmentConfig, g: torch.Generator):
    """Mixup or cutmix on a batch with soft targets (B, K); returns new (x, target)."""
    if not cfg.mixes or float(torch.rand(1, generator=g)) >= cfg.mix_p:
        return x, target
    use_cut = cfg.cutmix > 0 and (cfg.mixup <= 0 or float(torch.rand(1, generator=g)) < 0.5)
    alpha = cfg.cutmix if use_cut else cfg.mixup
    lam = float(_beta(alpha, g))
    perm = torch.randperm(x.shape[0], generator=g)
    if use_cut:
        h, w = x.shape[2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(h, (1,), generator=g)), int(torch.randint(w, (1,), generator=g))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = lam * x + (1 - lam) * x[perm]
    return x, lam * target + (1 - lam) * target[perm]


def _beta(alpha: float, g: torch.Generator) -> float:
    """Beta(alpha, alpha) drawn from the seeded torch generator, so runs repeat."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=g))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def random_crop(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` window of each image of a (B, C, H, W) batch."""
    b, _, h, w = x.shape
    if h <= size and w <= size:
        return x
    tops = torch.randint(h - size + 1, (b,), generator=g).tolist()
    lefts = torch.randint(w - size + 1, (b,), generator=g).tolist()
    return torch.stack([x[i, :, t:t + size, left:left + size]
                        for i, (t, left) in enumerate(zip(tops, lefts))])


def augment(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
            crop: int = 0) -> torch.Tensor:
    """Every per-image augmentation (not the mixing ones); ``crop`` > 0 adds random crops of
    that size (for a model that centre-crops at test)."""
    if cfg.flip or cfg.rotate or cfg.scale or cfg.shift:
        x = geometric(x, cfg, g)
    if crop:
        x = random_crop(x, crop, g)
    if cfg.erase_p > 0:
        x = erase(x, cfg, g)
    return x
