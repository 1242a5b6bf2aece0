"""Building blocks shared by the networks."""
from __future__ import annotations

import torch
import torch.nn.functional as F
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


class CenterCrop(nn.Module):
    """Centre-crops inputs larger than ``size`` (evaluation and export feed the full face;
    training feeds random crops of ``size``, which pass through unchanged)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h <= self.size and w <= self.size:
            return x
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return x[..., top:top + self.size, left:left + self.size]


class Classifier(nn.Module):
    """``features`` (conv trunk to a feature map) + pooled dropout + linear ``head``.

    Dropout sits right before the head so Monte-Carlo dropout can re-run only the head.

    With ``semantic_dim`` > 0 the head predicts a vector in a label-embedding space and the
    logits are ``semantic_scale * cos(vector, label_vectors[c])`` (the label vectors are a
    buffer, saved with the weights), so argmax is the nearest label and everything
    downstream (export, evaluation, analysis) sees ordinary class scores.
    """

    def __init__(self, features: nn.Module, feat_dim: int, num_classes: int, dropout: float,
                 semantic_dim: int = 0, semantic_scale: float = 10.0):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feat_dim, semantic_dim or num_classes)
        self.feat_dim = feat_dim
        self.semantic_scale = float(semantic_scale)
        if semantic_dim:
            self.register_buffer("label_vectors", torch.zeros(num_classes, semantic_dim))
        else:
            self.label_vectors = None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Head output -> class logits (identity unless the head is semantic)."""
        if self.label_vectors is None:
            return z
        return self.semantic_scale * F.normalize(z, dim=1) @ F.normalize(self.label_vectors, dim=1).T

    def class_weights(self) -> torch.Tensor:
        """The linear map from pooled features to class scores (K, C), for CAMs; for a
        semantic head, the label vectors pulled back through the head."""
        if self.label_vectors is None:
            return self.head.weight
        return F.normalize(self.label_vectors, dim=1) @ self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.head(self.dropout(self.embed(x))))
