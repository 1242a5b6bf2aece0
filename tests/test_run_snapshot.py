"""A run packed into one compact snapshot unpacks into a new folder that --resume continues
to the end: float16 weights within rounding of the originals, the averaged weights carried
once averaging has started, the history continued, an existing run never overwritten."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ferkit.errors import ConfigError
from ferkit.train import checkpoint, snapshot
from ferkit.train.config import TrainConfig
from ferkit.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def cfg(data):
    return TrainConfig.from_dict(dict(
        data=str(data), model="resnet_fast", width=8, epochs=4, batch_size=32, threads=1,
        seed=3, val_tta=False, optimizer="sgd", lr=0.05, momentum=0.9, average="ema",
        average_start=0.25, ema_decay=0.9))


def test_snapshot_resumes_in_a_new_folder(small_fer, tmp_path):
    Trainer(cfg(small_fer), tmp_path / "run", progress=False, stop_after=2).fit()
    snap = tmp_path / "run.snap.pt"
    r = snapshot.pack(tmp_path / "run", snap, with_best=True)
    assert r["epoch"] == 2 and "history.json" in r["files"]
    assert r["bytes"] < 0.75 * (tmp_path / "run" / "last.pt").stat().st_size
    snapshot.unpack(snap, tmp_path / "moved")
    a = checkpoint.load(tmp_path / "run" / "last.pt")
    b = checkpoint.load(tmp_path / "moved" / "last.pt")
    for k, v in a["model"].items():
        assert b["model"][k].dtype == v.dtype
        if v.is_floating_point():
            torch.testing.assert_close(b["model"][k], v, rtol=1e-3, atol=1e-4)
    assert int(b["averager"]["n_averaged"]) == int(a["averager"]["n_averaged"]) > 0
    assert b["optimizer"]["state"] == {}
    assert (tmp_path / "moved" / "best.pt").is_file()
    Trainer(cfg(small_fer), tmp_path / "moved", resume=True, progress=False).fit()
    hist = json.loads((tmp_path / "moved" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert checkpoint.load(tmp_path / "moved" / "last.pt")["state"]["epoch"] == 4
    with pytest.raises(ConfigError, match="exists"):
        snapshot.unpack(snap, tmp_path / "moved")


def test_snapshot_before_averaging_starts_rebuilds_the_averager(small_fer, tmp_path):
    c = cfg(small_fer)
    c.average_start = 0.75
    Trainer(c, tmp_path / "run", progress=False, stop_after=1).fit()
    snap = tmp_path / "s.pt"
    snapshot.pack(tmp_path / "run", snap)
    assert checkpoint.load_raw(snap)["averager"] is None
    snapshot.unpack(snap, tmp_path / "moved")
    Trainer(c, tmp_path / "moved", resume=True, progress=False).fit()
    assert checkpoint.load(tmp_path / "moved" / "last.pt")["state"]["epoch"] == 4


def test_script_names_a_missing_run(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_snapshot.py"), "pack",
                          str(tmp_path / "nope"), str(tmp_path / "s.pt")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "nope" in out.stderr and "not found" in out.stderr
    assert not (tmp_path / "s.pt").exists()


def test_averaged_only_snapshot_resumes_from_the_averaged_weights(small_fer, tmp_path):
    Trainer(cfg(small_fer), tmp_path / "run", progress=False, stop_after=2).fit()
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    snapshot.pack(tmp_path / "run", full)
    r = snapshot.pack(tmp_path / "run", half, averaged_only=True)
    assert r["bytes"] < 0.75 * full.stat().st_size
    snapshot.unpack(half, tmp_path / "moved")
    a = checkpoint.load(tmp_path / "run" / "last.pt")
    b = checkpoint.load(tmp_path / "moved" / "last.pt")
    assert int(b["averager"]["n_averaged"]) == int(a["averager"]["n_averaged"]) > 0
    for k, v in b["model"].items():
        avg = a["averager"]["module." + k]
        assert not v.is_floating_point() or torch.allclose(v, avg.float(), rtol=1e-3, atol=1e-4)
        assert torch.equal(b["averager"]["module." + k], v)
    Trainer(cfg(small_fer), tmp_path / "moved", resume=True, progress=False).fit()
    assert checkpoint.load(tmp_path / "moved" / "last.pt")["state"]["epoch"] == 4


def test_best_of_a_finished_run_in_float16_loads_as_a_checkpoint(small_fer, tmp_path):
    Trainer(cfg(small_fer), tmp_path / "run", progress=False).fit()
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_snapshot.py"), "best",
                          str(tmp_path / "run"), str(tmp_path / "best16.pt")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    best = checkpoint.load(tmp_path / "run" / "best.pt")
    small = checkpoint.load(tmp_path / "best16.pt")
    assert small["model"]["head.weight"].dtype == torch.float16
    assert (tmp_path / "best16.pt").stat().st_size < \
        0.7 * (tmp_path / "run" / "best.pt").stat().st_size
    a, b = (checkpoint.build_from_checkpoint(c) for c in (best, small))
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=2e-2, atol=2e-2)
        assert b.head.weight.dtype == torch.float32
