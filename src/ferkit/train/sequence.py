"""`ferkit temporal train`: fit the video sequence head (a GRU over per-frame embeddings of
one exported classifier) and measure it against per-frame classification with smoothing.

There is no labelled video data here, so the sequences are built from labelled stills: each
face becomes a short clip of ``window`` frames whose pose, scale, position, brightness and
noise drift as a smooth random walk (what a face does between video frames). The report
compares, on val clips built the same way: the last frame alone, EMA smoothing, the window
mean, and the GRU. (A top-level module like evaluate.py: it trains on the embeddings of the
exported ONNX model, exactly as the analysis path computes them.)"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ferkit.data import load_dataset
from ferkit.data.dataset import split_if_present
from ferkit.io import atomic_path, write_json
from ferkit.labels import ClassSpec
from ferkit.models.temporal import TemporalNet

log = logging.getLogger(__name__)


def jitter_clip(face: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """(window, H, W) uint8: the face drifting smoothly (random walk per parameter)."""
    h, w = face.shape[:2]
    steps = rng.normal(0, 1, (window, 5)).cumsum(0) / np.sqrt(window)
    ang, scale, dx, dy, light = (steps * [4.0, 0.04, 0.03 * w, 0.03 * h, 12.0]).T
    out = np.empty((window, h, w), np.uint8)
    for t in range(window):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), ang[t], 1 + scale[t])
        m[:, 2] += (dx[t], dy[t])
        f = cv2.warpAffine(face, m, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        f += light[t] + rng.normal(0, 3.0, f.shape)
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def clip_features(clf, images: np.ndarray, window: int, seed: int):
    """Per-frame probabilities and embeddings of jittered clips: (N, T, K), (N, T, D)."""
    from tqdm import tqdm
    rng = np.random.default_rng(seed)
    probs, embs = [], []
    for i in tqdm(range(0, len(images), 64), desc="clips", leave=False):
        clips = np.concatenate([jitter_clip(f, window, rng) for f in images[i:i + 64]])
        p, e = clf.predict_with_embeddings(list(clips))
        probs.append(p.reshape(-1, window, p.shape[1]))
        embs.append(e.reshape(-1, window, e.shape[1]))
    return np.concatenate(probs), np.concatenate(embs)


def ema(probs: np.ndarray, alpha: float) -> np.ndarray:
    s = probs[:, 0]
    for t in range(1, probs.shape[1]):
        s = alpha * probs[:, t] + (1 - alpha) * s
    return s


def _fit(net, xtr, y_tr, xva, y_va, epochs: int, window: int, seed: int) -> list[dict]:
    """AdamW on clips of random length (2..window frames, so short tracks work too); val
    accuracy on the full windows after each epoch."""
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-2)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(order), 256):
            idx = order[i:i + 256]
            length = int(torch.randint(2, window + 1, (1,), generator=g))
            loss = F.cross_entropy(net(xtr[idx][:, -length:]), y_tr[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = float((net(xva).argmax(1).numpy() == y_va).mean())
        history.append({"epoch": epoch + 1, "loss": float(loss.detach()), "val_accuracy": acc})
    return history


def train_temporal(model, data: str | Path, out_dir: str | Path, *, window: int = 8,
                   n_train: int = 6000, epochs: int = 20, hidden: int = 64, seed: int = 0,
                   threads: int = 2) -> dict:
    from ferkit.zoo.classify import OnnxClassifier
    t0 = time.time()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf = OnnxClassifier(model, threads=threads)
    kw = dict(size=clf.size, channels=clf.channels, spec=ClassSpec(tuple(clf.classes)))
    train = load_dataset(data, split_if_present(data, "train"), **kw)
    val = load_dataset(data, split_if_present(data, "val"), **kw)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(train))[:n_train]
    log.info("embedding %d train and %d val clips of %d frames", len(pick), len(val), window)
    _, e_tr = clip_features(clf, train.images[pick], window, seed)
    y_tr = torch.from_numpy(train.labels[pick])
    p_va, e_va = clip_features(clf, val.images, window, seed + 1)
    mu = e_tr.reshape(-1, e_tr.shape[2]).mean(0)
    sigma = e_tr.reshape(-1, e_tr.shape[2]).std(0) + 1e-4
    xtr = torch.from_numpy(((e_tr - mu) / sigma).astype(np.float32))
    xva = torch.from_numpy(((e_va - mu) / sigma).astype(np.float32))
    net = TemporalNet(e_tr.shape[2], len(clf.classes), hidden)
    history = _fit(net, xtr, y_tr, xva, val.labels, epochs, window, seed)
    yv = val.labels
    report = {
        "model": str(clf.ref.path.name), "window": window, "train_clips": len(pick),
        "val_clips": len(val), "epochs": epochs, "hidden": hidden,
        "val_accuracy": {
            "last_frame": float((p_va[:, -1].argmax(1) == yv).mean()),
            "first_frame": float((p_va[:, 0].argmax(1) == yv).mean()),
            "ema_0.5": float((ema(p_va, 0.5).argmax(1) == yv).mean()),
            "window_mean": float((p_va.mean(1).argmax(1) == yv).mean()),
            "gru": history[-1]["val_accuracy"]},
        "history": history, "seconds": time.time() - t0,
        "note": "clips synthesised from labelled stills (no labelled video available)"}
    arrays = {**net.to_arrays(), "mu": mu.astype(np.float32), "sigma": sigma.astype(np.float32),
              "window": np.int32(window), "embedding_dim": np.int32(e_tr.shape[2]),
              "classes": np.array(clf.classes),
              "model_sha256": np.array(hashlib.sha256(clf.ref.path.read_bytes()).hexdigest())}
    with atomic_path(out / "temporal.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    write_json(out / "temporal.json", report)
    return report
