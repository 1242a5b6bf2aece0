"""scripts/pack_faces.py: faces packed for a GPU lease unpack to the same pixels and labels,
as the readers see them, for FER+ folders and class folders (JPEG included)."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from ferkit.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("pack_faces", ROOT / "scripts" / "pack_faces.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _faces(n, seed):
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 256, (48, 48), dtype=np.uint8), (5, 5), 0)
            for _ in range(n)]


def test_class_folders_round_trip_with_jpeg_pixels(tmp_path):
    src = tmp_path / "src"
    for split, n in (("train", 4), ("val", 2)):
        for k, cls in enumerate(("happy", "sad")):
            (src / split / cls).mkdir(parents=True)
            for i, face in enumerate(_faces(n, k)):
                cv2.imwrite(str(src / split / cls / f"{cls}_{i}.jpg"), face)
    pf = _script()
    pf.pack(src, tmp_path / "p.npz.xz")
    pf.unpack(tmp_path / "p.npz.xz", tmp_path / "dst")
    for split in ("train", "val"):
        a = load_dataset(src, split)
        b = load_dataset(tmp_path / "dst", split)
        assert a.classes == b.classes and (a.labels == b.labels).all()
        assert (a.images == b.images).all()          # decoded JPEG pixels, now as PNG


def test_ferplus_round_trip_drops_unknown_majority(tmp_path):
    src = tmp_path / "fp"
    votes = [[6, 2, 0, 0, 0, 0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0, 0, 0, 9, 1],
             [1, 0, 0, 7, 0, 0, 0, 0, 1, 1]]
    for split in ("FER2013Train", "FER2013Valid"):
        (src / split).mkdir(parents=True)
        lines = []
        for i, (face, v) in enumerate(zip(_faces(3, 5), votes)):
            cv2.imwrite(str(src / split / f"fer{i:07d}.png"), face)
            lines.append(f'fer{i:07d}.png,"(0, 0, 48, 48)",' + ",".join(map(str, v)))
        (src / split / "label.csv").write_text("\n".join(lines) + "\n")
    pf = _script()
    pf.pack(src, tmp_path / "p.npz.xz")
    pf.unpack(tmp_path / "p.npz.xz", tmp_path / "dst")
    a = load_dataset(src, "train", soft=True)
    b = load_dataset(tmp_path / "dst", "train", soft=True)
    assert len(b) == 2                    # the reader drops the "unknown" majority face too
    assert (a.images == b.images).all() and np.allclose(a.soft, b.soft)
