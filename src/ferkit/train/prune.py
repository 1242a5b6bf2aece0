"""Structured channel pruning of a trained ResNet to a narrower width of the same family.

A ``resnet18`` of width 40 becomes a ``resnet18`` of width 32 (or any narrower width) that
the registry builds as usual: the same layout, fewer channels. Its weights are the kept
channels of the wide net, so fine-tuning it (``init_from``, with the wide net as a
distillation teacher) starts near the wide net's accuracy instead of from scratch.

Which channels stay (network slimming, Liu et al. 2017): those whose BatchNorm scale
|gamma| is largest. Channels joined by identity shortcuts form one residual stream and are
chosen together, by the sum of |gamma| of every BatchNorm that writes into the stream; the
inner channels of a block are chosen by its first BatchNorm alone."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ferkit.errors import ModelError
from ferkit.models.common import CenterCrop
from ferkit.models.resnet import BasicBlock


def _blocks(model) -> tuple[nn.Conv2d, nn.BatchNorm2d, list]:
    """(stem conv, stem BatchNorm, [BasicBlock, ...]) of a ferkit ResNet of BasicBlocks."""
    mods = [m for m in model.features
            if not isinstance(m, (nn.ReLU, CenterCrop))]
    ok = len(mods) > 2 and isinstance(mods[0], nn.Conv2d) and \
        isinstance(mods[1], nn.BatchNorm2d) and all(isinstance(m, BasicBlock) for m in mods[2:])
    if not ok or any(not isinstance(b.bn1, nn.BatchNorm2d) for b in mods[2:]):
        raise ModelError("pruning takes a ResNet of BasicBlocks with BatchNorm "
                         "(resnet18, resnet34, resnet_fast)")
    return mods[0], mods[1], mods[2:]


def _streams(blocks) -> tuple[list[int], list[int]]:
    """Stream id of each block's input and output: an identity shortcut keeps the stream."""
    ins, outs, cur = [], [], 0
    for b in blocks:
        ins.append(cur)
        if not isinstance(b.short, nn.Identity):
            cur += 1
        outs.append(cur)
    return ins, outs


def _writers(stem_bn, blocks, outs) -> dict[int, list[nn.BatchNorm2d]]:
    """The BatchNorms whose outputs add into each residual stream."""
    w: dict[int, list] = {0: [stem_bn]}
    for b, s in zip(blocks, outs):
        w.setdefault(s, []).append(b.bn2)
        if not isinstance(b.short, nn.Identity):
            w[s].append(b.short[1])
    return w


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    return torch.sort(torch.topk(scores, k).indices).values


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, idx) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).data.copy_(getattr(src, name).data[idx])
    dst.num_batches_tracked.data.copy_(src.num_batches_tracked.data)


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d, out_idx, in_idx) -> None:
    dst.weight.data.copy_(src.weight.data[out_idx][:, in_idx])


@torch.no_grad()
def prune_model(wide: nn.Module, narrow: nn.Module) -> nn.Module:
    """Fill ``narrow`` (same family, fewer channels, built by the registry) with the most
    important channels of ``wide``; returns ``narrow``."""
    if wide.label_vectors is not None:
        raise ModelError("pruning a semantic (label-embedding) head is not supported")
    conv0, bn0, blocks = _blocks(wide)
    nconv0, nbn0, nblocks = _blocks(narrow)
    if len(blocks) != len(nblocks):
        raise ModelError(f"pruning needs the same depth: {len(blocks)} vs {len(nblocks)} blocks")
    ins, outs = _streams(blocks)
    if _streams(nblocks) != (ins, outs):
        raise ModelError("pruning needs the same shortcut layout in both nets")
    size = {0: nbn0.num_features}
    size.update({s: nb.bn2.num_features for nb, s in zip(nblocks, outs)})
    keep = {s: _top(sum(bn.weight.abs() for bn in bns), size[s])
            for s, bns in _writers(bn0, blocks, outs).items()}
    all_in = torch.arange(conv0.in_channels)
    _copy_conv(nconv0, conv0, keep[0], all_in)
    _copy_bn(nbn0, bn0, keep[0])
    for b, nb, si, so in zip(blocks, nblocks, ins, outs):
        inner = _top(b.bn1.weight.abs(), nb.bn1.num_features)
        _copy_conv(nb.conv1, b.conv1, inner, keep[si])
        _copy_bn(nb.bn1, b.bn1, inner)
        _copy_conv(nb.conv2, b.conv2, keep[so], inner)
        _copy_bn(nb.bn2, b.bn2, keep[so])
        if not isinstance(b.short, nn.Identity):
            _copy_conv(nb.short[0], b.short[0], keep[so], keep[si])
            _copy_bn(nb.short[1], b.short[1], keep[so])
    narrow.head.weight.data.copy_(wide.head.weight.data[:, keep[outs[-1]]])
    narrow.head.bias.data.copy_(wide.head.bias.data)
    return narrow


def prune_checkpoint(ck: dict, width: int) -> dict:
    """A checkpoint of the same network at ``width`` with the kept channels of ``ck``'s
    (model_config width updated; training state dropped; the source noted)."""
    from ferkit.models import create_model
    from ferkit.train.checkpoint import build_from_checkpoint
    mc = copy.deepcopy(ck["model_config"])
    kw = mc["kwargs"]
    if "width" not in kw or width >= int(kw["width"]) or width < 1:
        raise ModelError(f"width {width}: pruning needs a narrower width than the "
                         f"checkpoint's {kw.get('width')}")
    wide = build_from_checkpoint(ck)
    kw["width"] = int(width)
    args = {k: v for k, v in kw.items() if k != "num_classes"}
    narrow = create_model(mc["name"], kw["num_classes"], mc["in_chans"], **args).eval()
    prune_model(wide, narrow)
    return {"model": narrow.state_dict(), "model_config": mc, "classes": ck["classes"],
            "config": ck.get("config"), "pruned_from": {"width": ck["model_config"]["kwargs"]
                                                        ["width"], "criterion": "bn_gamma"}}
