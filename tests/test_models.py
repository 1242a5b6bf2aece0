import pytest
import torch

from ferkit.errors import ModelError
from ferkit.models import create_model, list_models


@pytest.mark.parametrize("name", ["seed_cnn", "resnet18", "resnet34", "resnet50", "resnet_fast"])
def test_every_model_classifies_a_48px_batch(name):
    m = create_model(name, num_classes=5, in_chans=1).eval()
    assert m(torch.randn(2, 1, 48, 48)).shape == (2, 5)
    assert m.config.input_size == 48 and m.config.in_chans == 1
    assert len(m.config.mean) == 1


def test_registry_lists_required_variants():
    assert {"seed_cnn", "resnet18", "resnet34", "resnet50", "resnet_fast"} <= set(list_models())
    with pytest.raises(ModelError, match="unknown model"):
        create_model("vgg99")


def test_width_colour_and_groupnorm_options():
    m = create_model("resnet18", 7, 3, width=16, norm="group")
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    assert any(isinstance(x, torch.nn.GroupNorm) for x in m.modules())
    assert m(torch.randn(1, 3, 48, 48)).shape == (1, 7)
    wide = create_model("resnet18", 7, 1, width=32)
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in m.parameters())


def test_dropout_sits_before_the_head_for_mc_dropout():
    m = create_model("resnet_fast", 7, dropout=0.5)
    m.eval()
    m.dropout.train()                      # MC dropout: only dropout stochastic
    x = torch.randn(4, 1, 48, 48)
    a, b = m(x), m(x)
    assert not torch.allclose(a, b)
    m.dropout.eval()
    torch.testing.assert_close(m(x), m(x))
