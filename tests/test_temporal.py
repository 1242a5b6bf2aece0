"""The video sequence head: numpy GRU == PyTorch GRU, training on synthesised clips, and
its use in `ferkit analyze` on a real video."""
from __future__ import annotations

import csv
import json

import numpy as np
import torch
from conftest import SHARED

from ferkit.analysis.temporal import TemporalHead
from ferkit.cli import main
from ferkit.io import atomic_path
from ferkit.models.temporal import TemporalNet
from ferkit.train.sequence import jitter_clip

VIDEO = SHARED / "media" / "short_hamilton_clip.mp4"


def test_numpy_gru_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    net = TemporalNet(12, 7, hidden=9).eval()
    mu, sigma = np.zeros(12, np.float32), np.ones(12, np.float32)
    with atomic_path(tmp_path / "t.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **net.to_arrays(), mu=mu, sigma=sigma, window=np.int32(5),
                 embedding_dim=np.int32(12), model_sha256=np.array("x"))
    head = TemporalHead(tmp_path / "t.npz")
    seq = np.random.default_rng(0).normal(size=(3, 5, 12)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(seq)).numpy()
    assert np.abs(head.logits(seq) - ref).max() < 1e-5
    for t in range(7):                                   # a window slides over the track
        p = head.update(1, seq[0, t % 5])
    assert len(head._tracks[1]) == 5 and np.isclose(p.sum(), 1)
    head.forget(set())
    assert head._tracks == {}


def test_jitter_clip_drifts_smoothly():
    face = cv2_face()
    clip = jitter_clip(face, 8, np.random.default_rng(0))
    assert clip.shape == (8, 48, 48) and clip.dtype == np.uint8
    d = [np.abs(clip[t + 1].astype(int) - clip[t]).mean() for t in range(7)]
    assert 0 < np.mean(d) < 40


def cv2_face():
    import cv2
    happy = SHARED / "datasets" / "fer2013" / "val" / "happy"
    return cv2.imread(str(sorted(happy.iterdir())[0]), cv2.IMREAD_GRAYSCALE)


def test_temporal_train_and_analyze_a_video(small_fer, tmp_path, capsys):
    assert main(["temporal", "train", "--model", "fast", "--data", str(small_fer), "--out",
                 str(tmp_path / "t"), "--window", "4", "--n-train", "100", "--epochs", "2",
                 "--threads", "1"]) == 0
    rep = json.loads((tmp_path / "t" / "temporal.json").read_text())
    assert set(rep["val_accuracy"]) == {"last_frame", "first_frame", "ema_0.5", "window_mean", "gru"}
    npz = str(tmp_path / "t" / "temporal.npz")
    assert main(["analyze", str(VIDEO), "--model", "fast", "--temporal", npz, "--stride", "10",
                 "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "a" / "faces.csv")))
    assert len(rows) > 10 and all(r["track_id"] for r in rows)
    probs = np.array([[float(r[k]) for k in r if k.startswith("p_")] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-3)
    capsys.readouterr()
    assert main(["analyze", str(VIDEO), "--model", "default", "--temporal", npz,
                 "--out", str(tmp_path / "b")]) == 2           # trained for another model
    assert "another classifier" in capsys.readouterr().err
