"""ResNet family adapted to 48-px faces: a 3x3 stem (stride configurable) instead of the
7x7/stride-4 ImageNet stem, widths configurable, BatchNorm or GroupNorm.

Resolution options (issue 16's A/B): ``stem_stride=1`` keeps the stem and the first stage
at the full input resolution, as the published >= 72% FER2013 nets do; ``stage1_stride=2``
keeps only the stem there and halves the resolution in the first stage instead. ``crop``
makes the network centre-crop larger inputs to ``crop`` px (training feeds random crops of
that size), so exported models still take the full 48-px face."""
from __future__ import annotations

from torch import nn

from ferkit.models.common import CenterCrop, Classifier, norm_layer
from ferkit.models.registry import register


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = norm_layer(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(norm, planes)
        self.relu = nn.ReLU(inplace=True)
        self.short = _shortcut(cin, planes, stride, norm)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.short(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, norm):
        super().__init__()
        out = planes * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False), norm_layer(norm, planes), nn.ReLU(True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), norm_layer(norm, planes),
            nn.ReLU(True), nn.Conv2d(planes, out, 1, bias=False), norm_layer(norm, out))
        self.relu = nn.ReLU(inplace=True)
        self.short = _shortcut(cin, out, stride, norm)

    def forward(self, x):
        return self.relu(self.body(x) + self.short(x))


def _shortcut(cin, cout, stride, norm):
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm_layer(norm, cout))


def build_resnet(block, layers, num_classes=7, in_chans=1, width=64, stem_stride=1,
                 norm="batch", dropout=0.3, semantic_dim=0, semantic_scale=10.0,
                 stage1_stride=1, crop=0):
    if stem_stride not in (1, 2) or stage1_stride not in (1, 2):
        raise TypeError("stem_stride and stage1_stride must be 1 or 2")
    stem_w = max(16, width // 2) if stem_stride == 1 else width
    mods = [CenterCrop(crop)] if crop else []
    mods += [nn.Conv2d(in_chans, stem_w, 3, stem_stride, 1, bias=False),
             norm_layer(norm, stem_w), nn.ReLU(inplace=True)]
    cin = stem_w
    for i, n in enumerate(layers):
        planes = width * 2 ** i
        stride = stage1_stride if i == 0 else 2
        for j in range(n):
            mods.append(block(cin, planes, stride if j == 0 else 1, norm))
            cin = planes * block.expansion
    return Classifier(nn.Sequential(*mods), cin, num_classes, dropout, semantic_dim,
                      semantic_scale)


@register("resnet18", width=64, stem_stride=2)
def resnet18(**kw):
    return build_resnet(BasicBlock, [2, 2, 2, 2], **kw)


@register("resnet34", width=64, stem_stride=2)
def resnet34(**kw):
    return build_resnet(BasicBlock, [3, 4, 6, 3], **kw)


@register("resnet50", width=32, stem_stride=2)
def resnet50(**kw):
    return build_resnet(Bottleneck, [3, 4, 6, 3], **kw)


@register("resnet_fast", width=16, stem_stride=2, dropout=0.2)
def resnet_fast(**kw):
    """Small ResNet for real-time video (one block per stage)."""
    return build_resnet(BasicBlock, [1, 1, 1, 1], **kw)
