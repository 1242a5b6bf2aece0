import torch

from ferkit.train.augment import AugmentConfig, augment, mix


def batch():
    return torch.randn(16, 1, 48, 48, generator=torch.Generator().manual_seed(1))


def test_augment_is_seeded_and_changes_images():
    cfg = AugmentConfig()
    a = augment(batch(), cfg, torch.Generator().manual_seed(3))
    b = augment(batch(), cfg, torch.Generator().manual_seed(3))
    c = augment(batch(), cfg, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert a.shape == (16, 1, 48, 48) and not torch.allclose(a, c)


def test_flip_only_is_exact_mirror():
    cfg = AugmentConfig(flip=True, rotate=0, scale=0, shift=0, erase_p=0)
    x = batch()
    y = augment(x, cfg, torch.Generator().manual_seed(0))
    for i in range(len(x)):
        assert torch.allclose(y[i], x[i], atol=1e-4) or torch.allclose(y[i], x[i].flip(2), atol=1e-4)


def test_erasing_touches_only_a_rectangle():
    cfg = AugmentConfig(flip=False, rotate=0, scale=0, shift=0, erase_p=1.0)
    x = batch()
    y = augment(x, cfg, torch.Generator().manual_seed(0))
    changed = (y != x).float().mean((1, 2, 3))
    assert (changed > 0).all() and (changed <= 0.25).all()


def test_mixup_and_cutmix_keep_targets_distributions():
    t = torch.nn.functional.one_hot(torch.arange(16) % 7, 7).float()
    for cfg in (AugmentConfig(mixup=0.4, mix_p=1.0), AugmentConfig(cutmix=1.0, mix_p=1.0)):
        x, y = mix(batch(), t, cfg, torch.Generator().manual_seed(0))
        torch.testing.assert_close(y.sum(1), torch.ones(16))
        assert (y.max(1).values < 1).any()
