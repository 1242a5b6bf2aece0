"""Sharpness-aware minimisation (train/optim.py): the step is SGD's step taken with the
gradient at the perturbed weights, BatchNorm statistics move once per step, and a SAM run
resumes exactly."""
import json

import pytest
import torch
from conftest import interrupt_after

from ferkit.train import checkpoint
from ferkit.train.config import TrainConfig
from ferkit.train.optim import is_sam, make_optimizer, sam_update
from ferkit.train.trainer import Trainer


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6),
                               torch.nn.ReLU(), torch.nn.Linear(6, 3))


def _loss(net, x, y):
    return torch.nn.functional.cross_entropy(net(x), y)


def test_sam_step_uses_the_gradient_at_the_perturbed_weights():
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    rho, lr = 0.2, 0.1
    cfg = TrainConfig(optimizer="sgd", lr=lr, momentum=0.0, sam_rho=rho)
    net = _net()
    opt = make_optimizer([{"params": list(net.parameters()), "weight_decay": 0.0}], cfg)
    assert is_sam(opt)
    # the expected step, by hand: ascend to w + rho g / |g|, take the gradient there
    ref = _net()
    params = list(ref.parameters())
    g = torch.autograd.grad(_loss(ref, x, y), params)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    running = ref[1].running_mean.clone()
    with torch.no_grad():
        for p, gi in zip(params, g):
            p.add_(rho * gi / norm)
    ref[1].momentum = 0.0
    g2 = torch.autograd.grad(_loss(ref, x, y), params)
    expected = [p0 - lr * gi for p0, gi in zip(_net().parameters(), g2)]

    _loss(net, x, y).backward()
    sam_update(opt, net, lambda: _loss(net, x, y))
    for p, e in zip(net.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)
    torch.testing.assert_close(net[1].running_mean, running)   # one update, not two
    assert net[1].momentum == 0.1                                # restored
    assert not is_sam(make_optimizer([{"params": list(net.parameters())}],
                                     TrainConfig(optimizer="sgd")))


def test_sam_run_trains_and_resumes_exactly(small_fer, tmp_path, monkeypatch):
    kw = dict(data=str(small_fer), model="resnet_fast", width=8, epochs=2, batch_size=32,
              threads=1, seed=3, val_tta=False, optimizer="sgd", lr=0.05, sam_rho=0.05)
    Trainer(TrainConfig.from_dict(kw), tmp_path / "full", progress=False).fit()
    interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig.from_dict(kw), tmp_path / "cut", progress=False).fit()
    monkeypatch.undo()
    Trainer(TrainConfig.from_dict(kw), tmp_path / "cut", progress=False, resume=True).fit()
    a = checkpoint.load(tmp_path / "full" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "cut" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    assert json.loads((tmp_path / "full" / "config.json").read_text())["sam_rho"] == 0.05
    plain = dict(kw, sam_rho=0.0)
    Trainer(TrainConfig.from_dict(plain), tmp_path / "plain", progress=False).fit()
    c = checkpoint.load(tmp_path / "plain" / "last.pt")["model"]
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
