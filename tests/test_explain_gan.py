"""Grad-CAM explanations on real photos and the conditional face GAN."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import SHARED

from ferkit.cli import main
from ferkit.errors import ConfigError

PHOTO = SHARED / "media" / "obama_and_biden.jpg"


def test_grad_cam_maps_are_normalised_and_class_specific():
    import torch

    from ferkit.evaluation.explain import grad_cam, load_torch_model
    from ferkit.train.loop import to_input
    net, classes, mc = load_torch_model("default")
    happy = SHARED / "datasets" / "fer2013" / "val" / "happy"
    face = cv2.imread(str(sorted(happy.iterdir())[0]), cv2.IMREAD_GRAYSCALE)
    x = to_input(torch.from_numpy(face[None, None]), mc["mean"], mc["std"])
    cams, probs = grad_cam(net, x, [classes.index("happy"), classes.index("angry")])
    assert cams.shape == (2, 48, 48)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
    assert np.isclose(cams[0].max(), 1.0)
    assert not np.allclose(cams[0], cams[1])          # a different class, a different map
    assert np.isclose(probs.sum(), 1, atol=1e-5)


def test_explain_cli_writes_a_strip_per_face_and_a_grid(tmp_path, capsys):
    bad = tmp_path / "in" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "in" / "photo.jpg").write_bytes(PHOTO.read_bytes())
    out = tmp_path / "out"
    rc = main(["explain", str(tmp_path / "in"), "--out", str(out), "--classes", "happy,sad"])
    assert rc == 1                                     # one bad file reported, the rest done
    rep = json.loads((out / "explain.json").read_text())
    assert len(rep["faces"]) == 3                      # the three real faces of the photo
    assert rep["errors"] and "broken.jpg" in rep["errors"][0]["source"]
    for f in rep["faces"]:
        img = cv2.imread(str(out / f["file"]))
        assert img is not None and img.shape[1] == 144 * (1 + len(f["explained"]))
        assert f["explained"][0] == f["label"] and {"happy", "sad"} <= set(f["explained"])
    assert cv2.imread(str(out / "grid.png")).shape[0] == 144 * 3
    assert "photo.jpg face 0" in capsys.readouterr().out


def test_explain_refuses_unknown_classes_and_no_faces(tmp_path, capsys):
    with pytest.raises(ConfigError, match="bewildered"):
        from ferkit.evaluation.explain import explain
        explain([str(PHOTO)], tmp_path, classes=["bewildered"])
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    assert main(["explain", str(blank), "--out", str(tmp_path / "o")]) == 2
    assert "no face" in capsys.readouterr().err


def test_frechet_distance():
    from ferkit.train.gan import frechet_distance
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 8))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(32.0, rel=1e-6)   # 8 dims x 2^2
    assert frechet_distance(a, rng.normal(size=(4000, 8)) * 3) > 20


def test_gan_train_sample_and_use_as_extra_training_data(small_fer, tiny_run, tmp_path):
    from ferkit.data import load_dataset
    from ferkit.train.config import TrainConfig
    from ferkit.train.trainer import load_splits
    run = tmp_path / "gan"
    rc = main(["gan", "train", "--data", str(small_fer), "--out", str(run), "--epochs", "2",
               "--width", "8", "--batch-size", "32", "--fid-model", str(tiny_run / "best.pt"),
               "--no-progress", "--threads", "1"])
    assert rc == 0
    hist = json.loads((run / "history.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(h["frechet_distance"]) for h in hist)
    grid = cv2.imread(str(run / "samples" / "epoch002.png"), cv2.IMREAD_GRAYSCALE)
    assert grid is not None and grid.shape[0] == 7 * 96
    assert main(["gan", "sample", "--run", str(run), "--per-class", "3", "--out",
                 str(tmp_path / "fake")]) == 0
    fake = load_dataset(tmp_path / "fake", None)
    assert len(fake) == 21 and fake.images.shape[1:] == (48, 48)
    assert set(fake.counts().values()) == {3}
    cfg = TrainConfig.from_dict({"data": str(small_fer), "extra_data": str(tmp_path / "fake")})
    train, _ = load_splits(cfg)
    assert len(train) == 7 * 24 + 21


def test_gan_sample_errors(tmp_path, capsys):
    assert main(["gan", "sample", "--run", str(tmp_path / "nope"), "--per-class", "2",
                 "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
