"""The classic FER2013 class-project CNN: four conv blocks (conv, norm, ReLU, max-pool,
dropout) and two dense layers. A baseline, not a contender."""
from __future__ import annotations

from torch import nn

from ferkit.models.common import Classifier, norm_layer
from ferkit.models.registry import register


class _Dense(nn.Module):
    def __init__(self, cin, num_classes, dropout):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(cin, 256), nn.ReLU(True), nn.Dropout(dropout),
                                  nn.Linear(256, 512), nn.ReLU(True))

    def forward(self, x):
        return self.body(x)


@register("seed_cnn", dropout=0.25)
def seed_cnn(num_classes=7, in_chans=1, norm="batch", dropout=0.25, width=64, semantic_dim=0,
             semantic_scale=10.0):
    chans = [width, width * 2, width * 8, width * 8]
    kernels = [3, 5, 3, 3]
    mods, cin = [], in_chans
    for c, k in zip(chans, kernels):
        mods += [nn.Conv2d(cin, c, k, 1, k // 2, bias=False), norm_layer(norm, c),
                 nn.ReLU(True), nn.MaxPool2d(2), nn.Dropout(dropout)]
        cin = c
    # 48 -> 3x3 after four pools; the dense part sits inside `features` via a 1x1 map.
    mods += [nn.Flatten(), _Dense(cin * 9, num_classes, dropout), nn.Unflatten(1, (512, 1, 1))]
    return Classifier(nn.Sequential(*mods), 512, num_classes, dropout, semantic_dim,
                      semantic_scale)
