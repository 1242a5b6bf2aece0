"""A class-conditional DCGAN for 48x48 grayscale faces.

Generator: noise + class embedding -> 6x6 map -> three stride-2 transposed convolutions
(BatchNorm, ReLU) -> tanh image. Discriminator: three stride-2 convolutions with spectral
norm and LeakyReLU, and a projection head for the class (Miyato & Koyama 2018)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


class Generator(nn.Module):
    def __init__(self, num_classes: int, z_dim: int = 64, width: int = 64, channels: int = 1):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.embed = nn.Embedding(num_classes, 32)
        self.fc = nn.Sequential(nn.Linear(z_dim + 32, width * 4 * 36), nn.BatchNorm1d(width * 4 * 36),
                                nn.ReLU(True))
        self.width = width

        def up(cin, cout):
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(True)]
        self.body = nn.Sequential(*up(width * 4, width * 2), *up(width * 2, width),
                                  nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y)], 1)).view(-1, self.width * 4, 6, 6)
        return self.body(h)                                   # (B, C, 48, 48) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, num_classes: int, width: int = 64, channels: int = 1):
        super().__init__()
        act = nn.LeakyReLU(0.2, True)
        self.body = nn.Sequential(
            spectral_norm(nn.Conv2d(channels, width, 4, 2, 1)), act,
            spectral_norm(nn.Conv2d(width, width * 2, 4, 2, 1)), act,
            spectral_norm(nn.Conv2d(width * 2, width * 4, 4, 2, 1)), act)
        feat = width * 4 * 36
        self.out = spectral_norm(nn.Linear(feat, 1))
        self.proj = spectral_norm(nn.Embedding(num_classes, feat))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(self.body(x), 1)
        return self.out(h).squeeze(1) + (self.proj(y) * h).sum(1)
