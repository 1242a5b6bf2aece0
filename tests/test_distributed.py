"""DistributedDataParallel under real torchrun processes (gloo on this CPU): two processes
with the same global batch and seed follow the one-process run."""
import json
import subprocess
import sys

import pytest
import torch
from serving import free_port

from ferkit.train import checkpoint

ARGS = ["--model", "resnet_fast", "--width", "8", "--epochs", "2", "--batch-size", "32",
        "--threads", "1", "--seed", "5", "--no-val-tta", "--no-progress"]


def train(data, out, nproc: int, *extra):
    if nproc == 1:
        cmd = [sys.executable, "-m", "ferkit", "train"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "-m", "ferkit", "train"]
    r = subprocess.run(cmd + ["--data", str(data), "--out", str(out), *ARGS, *extra],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((out / "history.json").read_text())


@pytest.mark.slow
def test_two_processes_follow_one_with_groupnorm_and_no_dropout(small_fer, tmp_path):
    """GroupNorm, no dropout and SGD: nothing depends on how the global batch is split, so
    the runs differ only by the order of floating-point sums (the all-reduce). After one
    epoch (5 steps) the weights agree to 1e-5; the loss curve over two epochs agrees to 1e-4
    (relative). Weights are not compared after two epochs: on this tiny net a ReLU input
    within 1e-7 of zero flips a path, and such near ties grow a 1e-7 difference into 1e-3
    within a few more steps (measured: 4e-7, 1.5e-5, 9e-4 after 4, 6 and 8 steps)."""
    extra = ["--norm", "group", "--dropout", "0", "--optimizer", "sgd", "--lr", "0.05"]
    train(small_fer, tmp_path / "one1", 1, *extra, "--epochs", "1")
    train(small_fer, tmp_path / "two1", 2, *extra, "--epochs", "1")
    wa = checkpoint.load(tmp_path / "one1" / "last.pt")["model"]
    wb = checkpoint.load(tmp_path / "two1" / "last.pt")["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)
    one = train(small_fer, tmp_path / "one", 1, *extra)
    two = train(small_fer, tmp_path / "two", 2, *extra)
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["lr"] == a["lr"]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["hardware"]["processes"] == 2
    assert len(json.loads((tmp_path / "two" / "sessions.json").read_text())) == 1


@pytest.mark.slow
def test_two_processes_with_batchnorm_and_resume(small_fer, tmp_path):
    """BatchNorm normalises each process's half batch on CPU (gloo has no SyncBatchNorm),
    and dropout masks fall differently, so the curves agree loosely, not exactly. The
    two-process run stops after one epoch (--stop-after 1) and is continued with --resume."""
    one = train(small_fer, tmp_path / "one", 1, "--epochs", "3")
    out = tmp_path / "two"
    part = train(small_fer, out, 2, "--epochs", "3", "--stop-after", "1")
    assert [h["epoch"] for h in part] == [1]
    two = train(small_fer, out, 2, "--epochs", "3", "--resume")
    assert [h["epoch"] for h in two] == [1, 2, 3]
    assert two[0] == part[0]
    sessions = json.loads((out / "sessions.json").read_text())
    assert [(s["first_epoch"], s["last_epoch"]) for s in sessions] == [(1, 1), (2, 3)]
    for a, b in zip(one, two):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.1)


@pytest.mark.slow
def test_dp_two_processes_report_the_same_epsilon(small_fer, tmp_path):
    """Opacus' DPDDP: each process Poisson-samples its shard at the one-process rate, so the
    noise multiplier solved for the target and the epsilon spent are the same."""
    dp = ["--dp", "--norm", "group", "--epsilon", "4", "--physical-batch", "16"]
    train(small_fer, tmp_path / "one", 1, *dp)
    train(small_fer, tmp_path / "two", 2, *dp)
    p1 = json.loads((tmp_path / "one" / "summary.json").read_text())["privacy"]
    p2 = json.loads((tmp_path / "two" / "summary.json").read_text())["privacy"]
    assert p2["processes"] == 2 and p1["processes"] == 1
    for key in ("epsilon", "noise_multiplier", "sample_rate", "delta"):
        assert p2[key] == pytest.approx(p1[key], rel=1e-9), key
    assert p1["epsilon"] <= 4.0 + 1e-6
    h2 = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [h["epoch"] for h in h2] == [1, 2] and h2[-1]["epsilon"] == pytest.approx(p1["epsilon"])
