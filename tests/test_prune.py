"""Structured channel pruning (ferkit.train.prune, `ferkit prune`): a narrower ResNet of the
same family that keeps the wide net's most important channels."""
import json

import pytest
import torch
from torch import nn

from ferkit.cli import main
from ferkit.errors import ModelError
from ferkit.models import create_model
from ferkit.models.resnet import BasicBlock
from ferkit.train import checkpoint
from ferkit.train.prune import prune_checkpoint, prune_model


def _silence(bn: nn.BatchNorm2d, keep: int) -> None:
    """Channels from ``keep`` on write exact zeros (scale and shift 0); the rest get large
    scales so that the pruner must keep exactly them."""
    with torch.no_grad():
        bn.weight[keep:] = 0.0
        bn.bias[keep:] = 0.0
        bn.weight[:keep] = bn.weight[:keep].abs() + 1.0


def _wide_with_dead_channels(**kw):
    """A width-16 resnet18 whose channels past width 12 carry nothing, with random weights
    and BatchNorm statistics: pruning it to width 12 must not change its outputs."""
    torch.manual_seed(0)
    wide = create_model("resnet18", 7, 1, width=16, **kw)
    for m in wide.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.1)
    narrow = create_model("resnet18", 7, 1, width=12, **kw)
    mods = [m for m in wide.features if isinstance(m, (nn.BatchNorm2d, BasicBlock))]
    nmods = [m for m in narrow.features if isinstance(m, (nn.BatchNorm2d, BasicBlock))]
    _silence(mods[0], nmods[0].num_features)
    for b, nb in zip(mods[1:], nmods[1:]):
        _silence(b.bn1, nb.bn1.num_features)
        _silence(b.bn2, nb.bn2.num_features)
        if not isinstance(b.short, nn.Identity):
            _silence(b.short[1], nb.short[1].num_features)
    return wide.eval(), narrow.eval()


@pytest.mark.parametrize("kw", [dict(stem_stride=1, stage1_stride=2), dict(stem_stride=2)])
def test_pruning_dead_channels_keeps_the_outputs(kw):
    wide, narrow = _wide_with_dead_channels(**kw)
    x = torch.randn(4, 1, 48, 48)
    before = narrow(x)
    prune_model(wide, narrow)
    with torch.no_grad():
        assert not torch.allclose(before, narrow(x))
        torch.testing.assert_close(narrow(x), wide(x), rtol=1e-4, atol=1e-4)


def test_prune_checkpoint_and_cli(tmp_path):
    wide, _ = _wide_with_dead_channels(stem_stride=1, stage1_stride=2)
    ck = {"model": wide.state_dict(), "model_config": wide.config.to_dict(),
          "classes": ["a", "b", "c", "d", "e", "f", "g"]}
    src = tmp_path / "wide.pt"
    checkpoint.save(src, ck)
    out = tmp_path / "narrow.pt"
    assert main(["prune", str(src), "--width", "12", "--out", str(out)]) == 0
    small = checkpoint.load(out)
    assert small["model_config"]["kwargs"]["width"] == 12
    assert small["pruned_from"]["width"] == 16
    note = json.loads((tmp_path / "prune.json").read_text())   # for run lineage
    assert note["source"] == str(src) and note["width"] == 16 and note["to_width"] == 12
    net = checkpoint.build_from_checkpoint(small)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(net(x), wide(x), rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in net.parameters()) < \
        0.7 * sum(p.numel() for p in wide.parameters())
    with pytest.raises(ModelError, match="narrower width"):
        prune_checkpoint(ck, 16)
    assert main(["prune", str(src), "--width", "20", "--out", str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_pruning_refuses_group_norm_nets():
    wide = create_model("resnet18", 7, 1, width=16, norm="group")
    narrow = create_model("resnet18", 7, 1, width=12, norm="group")
    with pytest.raises(ModelError, match="BatchNorm"):
        prune_model(wide, narrow)
