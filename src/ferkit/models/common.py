"""Building blocks shared by the networks."""
from __future__ import annotations

import torch
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm, or GroupNorm (needed by differentially private training)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(min(groups, channels), channels)
    raise ValueError(f"norm must be 'batch' or 'group', not {kind!r}")


def conv_bn(cin: int, cout: int, norm: str, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         norm_layer(norm, cout), nn.ReLU(inplace=True))


class Classifier(nn.Module):
    """``features`` (conv trunk to a feature map) + pooled dropout + linear ``head``.

    Dropout sits right before the head so Monte-Carlo dropout can re-run only the head.
    """

    def __init__(self, features: nn.Module, feat_dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feat_dim, num_classes)
        self.feat_dim = feat_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))
