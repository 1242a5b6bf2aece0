"""Shared fixtures: real faces from ../shared, small datasets built from them, and one
tiny trained + exported model reused by the export/evaluate/CLI tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FER = SHARED / "datasets" / "fer2013"
FERPLUS = SHARED / "datasets" / "ferplus"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def pytest_configure(config):
    if not FER.is_dir():
        pytest.exit(f"tests need the shared datasets at {FER}", returncode=3)


def real_faces(split: str, cls: str, n: int) -> list[Path]:
    return sorted((FER / split / cls).glob("*.jpg"))[:n]


@pytest.fixture(scope="session")
def small_fer(tmp_path_factory) -> Path:
    """A FER2013-layout folder with train/val splits of real faces (24/8 per class)."""
    root = tmp_path_factory.mktemp("small_fer")
    for split, n in (("train", 24), ("val", 8)):
        for cls in CLASSES:
            d = root / split / cls
            d.mkdir(parents=True)
            for p in real_faces(split, cls, n):
                shutil.copy(p, d / p.name)
    return root


@pytest.fixture(scope="session")
def fer_csv(tmp_path_factory) -> Path:
    """The challenge CSV form (emotion,pixels,Usage) of a few real faces."""
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    lines = ["emotion,pixels,Usage"]
    for usage, split in (("Training", "train"), ("PublicTest", "val")):
        for i, cls in enumerate(CLASSES):
            for p in real_faces(split, cls, 3):
                img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                lines.append(f"{i},{' '.join(map(str, img.ravel()))},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_run(small_fer, tmp_path_factory) -> Path:
    """A run folder trained for two short epochs by the real CLI (resnet_fast, width 8)."""
    from ferkit.cli import main
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--data", str(small_fer), "--model", "resnet_fast", "--width", "8",
               "--epochs", "2", "--batch-size", "32", "--out", str(out), "--no-progress",
               "--threads", "1"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, small_fer) -> Path:
    from ferkit.data import load_dataset
    from ferkit.zoo.export import export
    imgs = load_dataset(small_fer, "val").images
    out = tiny_run / "tiny.onnx"
    export(tiny_run / "best.pt", out, parity_images=imgs,
           slim_checkpoint=tiny_run / "tiny.pt")
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def interrupt_after(monkeypatch, epochs: int) -> None:
    """Make Trainer raise KeyboardInterrupt (as Ctrl-C would) when epoch ``epochs`` + 1
    starts; undo with ``monkeypatch.undo()``."""
    from ferkit.train.trainer import Trainer
    real_epoch, calls = Trainer._epoch, {"n": 0}

    def interrupted(self, *a, **k):
        if calls["n"] == epochs:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real_epoch(self, *a, **k)

    monkeypatch.setattr(Trainer, "_epoch", interrupted)
