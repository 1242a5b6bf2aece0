"""Ambiguous-label options of training: semantic label vectors and losses, label
distributions, flip attention consistency, hard-sample reweighting, partial fine-tuning."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FERPLUS

from ferkit.errors import ConfigError
from ferkit.train.config import TrainConfig
from ferkit.train.losses import (
    HardSampleReweighter,
    class_activation_maps,
    flip_consistency,
    neighbour_matrix,
    per_sample_loss,
    prepare_targets,
)
from ferkit.train.semantic import label_vectors, similarity, source
from ferkit.train.trainer import Trainer

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_label_vectors_come_from_a_real_text_model():
    v = label_vectors(CLASSES)
    assert v.shape == (7, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    s = similarity(CLASSES)
    assert np.allclose(np.diag(s), 1, atol=1e-5)
    assert (s[~np.eye(7, dtype=bool)] < 0.95).all()       # distinct words, distinct vectors
    assert "MiniLM" in source()["model"]
    with pytest.raises(ConfigError, match="no label vector"):
        label_vectors(["happy", "bewildered"])


def test_neighbour_matrix_moves_alpha_to_the_closest_labels():
    v = label_vectors(CLASSES)
    nb = neighbour_matrix(v, alpha=0.3, tau=0.1).numpy()
    assert np.allclose(nb.sum(1), 1, atol=1e-6)
    assert np.allclose(np.diag(nb), 0.7, atol=1e-6)
    s = similarity(CLASSES)
    for i in range(7):
        off = [j for j in range(7) if j != i]
        assert off[int(np.argmax(nb[i, off]))] == off[int(np.argmax(s[i, off]))]


def test_losses_on_soft_targets():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    t = torch.tensor([[0.7, 0.3, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    kl = per_sample_loss(logits, t, "kl")
    assert kl[1].item() == pytest.approx(0.0, abs=1e-6)          # perfect fit: zero divergence
    ce = per_sample_loss(logits, t, "ce")
    ent = -(t * torch.log(t.clamp_min(1e-8))).sum(1)
    assert torch.allclose(ce - kl, ent, atol=1e-5)                # KL = CE - H(target)
    cos = torch.tensor([[10.0, 0.0, -10.0]])                      # scale 10 * cos
    assert per_sample_loss(cos, torch.tensor([[1.0, 0, 0]]), "semantic").item() == pytest.approx(0)
    assert per_sample_loss(cos, torch.tensor([[0, 0, 1.0]]), "semantic").item() == pytest.approx(2)
    g = torch.Generator().manual_seed(0)
    drawn = torch.stack([prepare_targets(torch.tensor([[0.8, 0.2, 0.0]]), "sample", g)[0]
                         for _ in range(400)])
    assert drawn.sum(1).eq(1).all() and drawn[:, 2].sum() == 0
    assert 0.7 < drawn[:, 0].mean() < 0.9


def test_flip_consistency_is_zero_for_mirror_symmetric_cams():
    fmap = torch.rand(2, 4, 3, 3)
    w = torch.rand(5, 4)
    cams = class_activation_maps(fmap, w)
    assert cams.shape == (2, 5, 3, 3)
    assert flip_consistency(cams, cams.flip(3)).item() == pytest.approx(0.0)
    assert flip_consistency(cams, (cams + 1).flip(3)).item() == pytest.approx(1.0)


def test_reweighter_downweights_the_persistently_hard_share():
    rw = HardSampleReweighter(10, share=0.2, weight=0.3, warmup=2)
    losses = np.arange(10, dtype=np.float32)
    for _ in range(2):
        rw.update(np.arange(10), losses)
        n = rw.end_epoch()
    assert n == 2 and set(np.nonzero(rw.low)[0]) == {8, 9}
    assert rw.weights(np.array([0, 9])).tolist() == pytest.approx([1.0, 0.3])


@pytest.mark.parametrize("extra", [{"loss": "semantic"}, {"loss": "semantic_smooth"},
                                   {"attention_consistency": 1.0},
                                   {"reweight": 0.2, "reweight_warmup": 1}])
def test_training_options_run_end_to_end(small_fer, tmp_path, extra):
    cfg = TrainConfig.from_dict({"data": str(small_fer), "model": "resnet_fast", "width": 8,
                                 "epochs": 2, "batch_size": 32, "threads": 1, **extra})
    res = Trainer(cfg, tmp_path, progress=False).fit()
    assert 0 <= res.val_report["accuracy"] <= 1
    hist = json.loads((tmp_path / "history.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(h["train_loss"]) for h in hist)
    if "reweight" in extra:
        assert hist[1]["downweighted"] > 0
        lines = (tmp_path / "downweighted.csv").read_text().splitlines()
        assert lines[0] == "path,label,loss_ema" and len(lines) == hist[1]["downweighted"] + 1


def test_semantic_model_exports_and_predicts_the_nearest_label(small_fer, tmp_path):
    from ferkit.data import load_dataset
    from ferkit.train import checkpoint
    from ferkit.zoo.classify import OnnxClassifier
    from ferkit.zoo.export import export
    cfg = TrainConfig.from_dict({"data": str(small_fer), "model": "resnet_fast", "width": 8,
                                 "epochs": 1, "batch_size": 32, "threads": 1, "loss": "semantic"})
    Trainer(cfg, tmp_path, progress=False).fit()
    ck = checkpoint.load(tmp_path / "best.pt")
    model = checkpoint.build_from_checkpoint(ck)
    assert model.head.out_features == 384
    assert torch.allclose(model.label_vectors, torch.from_numpy(label_vectors(CLASSES)))
    val = load_dataset(small_fer, "val")
    export(tmp_path / "best.pt", tmp_path / "sem.onnx", parity_images=val.images, evaluate_val=False)
    clf = OnnxClassifier(tmp_path / "sem.onnx", tta=False)
    p = clf.predict_proba(val.images[:5])
    assert p.shape == (5, 7) and np.allclose(p.sum(1), 1, atol=1e-5)
    mc = clf.predict_mc(val.images[:5], passes=4)
    assert mc["mean"].shape == (5, 7)


def test_kl_and_sample_need_label_distributions(small_fer):
    with pytest.raises(ConfigError, match="soft-labels"):
        TrainConfig.from_dict({"data": str(small_fer), "loss": "kl"})


@pytest.mark.skipif(not FERPLUS.is_dir(), reason="needs ../shared/datasets/ferplus")
def test_ferplus_vote_distributions_train_with_kl_and_sampling(tmp_path):
    for loss in ("kl", "sample"):
        cfg = TrainConfig.from_dict({"data": str(FERPLUS), "classes": "ferplus", "soft_labels": True,
                                     "loss": loss, "model": "resnet_fast", "width": 8, "epochs": 1,
                                     "batch_size": 64, "threads": 1, "max_steps_per_epoch": 3})
        res = Trainer(cfg, tmp_path / loss, progress=False).fit()
        assert len(res.val_report["per_class"]) == 8


def test_fine_tuning_only_the_head_leaves_the_backbone_untouched(tiny_run, small_fer, tmp_path):
    from ferkit.train import checkpoint
    cfg = TrainConfig.from_dict({"data": str(small_fer), "model": "resnet_fast", "width": 8,
                                 "epochs": 1, "batch_size": 32, "threads": 1, "trainable": "head",
                                 "init_from": str(tiny_run / "best.pt"), "warmup_epochs": 0})
    Trainer(cfg, tmp_path, progress=False).fit()
    before = checkpoint.load(tiny_run / "best.pt")["model"]
    after = checkpoint.load(tmp_path / "last.pt")["model"]
    for k, v in before.items():
        if k.startswith("head."):
            assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, after[k]), k          # incl. BatchNorm running statistics
