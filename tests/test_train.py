import json

import pytest
import torch
from conftest import interrupt_after

from ferkit.cli import main
from ferkit.cpuinfo import family_model
from ferkit.errors import ConfigError
from ferkit.train import checkpoint
from ferkit.train.config import TrainConfig
from ferkit.train.trainer import Trainer


def cfg(data, **kw):
    base = dict(data=str(data), model="resnet_fast", width=8, epochs=2, batch_size=32,
                threads=1, seed=3, val_tta=False)
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_run_writes_metrics_curves_and_checkpoints(tiny_run):
    for name in ("best.pt", "last.pt", "history.csv", "history.json", "curves.png",
                 "summary.json", "config.json"):
        assert (tiny_run / name).is_file(), name
    hist = json.loads((tiny_run / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    assert {"train_loss", "val_acc", "val_macro_f1", "lr", "images_per_s"} <= set(hist[0])
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["val_report"]["n"] == 56


def test_same_seed_gives_the_same_run(small_fer, tmp_path):
    Trainer(cfg(small_fer), tmp_path / "a", progress=False).fit()
    Trainer(cfg(small_fer), tmp_path / "b", progress=False).fit()
    a = checkpoint.load(tmp_path / "a" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "b" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["val_acc"] for h in ha] == [h["val_acc"] for h in hb]


def test_resume_continues_an_interrupted_run_exactly(small_fer, tmp_path, monkeypatch):
    full = Trainer(cfg(small_fer), tmp_path / "full", progress=False)
    full.fit()
    part = Trainer(cfg(small_fer), tmp_path / "part", progress=False)
    interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    monkeypatch.undo()
    assert json.loads((tmp_path / "part" / "history.json").read_text())[-1]["epoch"] == 1
    Trainer(cfg(small_fer), tmp_path / "part", resume=True, progress=False).fit()
    a = checkpoint.load(tmp_path / "full" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "part" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_resume_with_other_options_is_refused(small_fer, tmp_path):
    Trainer(cfg(small_fer, epochs=1), tmp_path / "r", progress=False).fit()
    with pytest.raises(ConfigError, match="other options"):
        Trainer(cfg(small_fer, epochs=1, lr=0.5), tmp_path / "r", resume=True,
                progress=False).fit()


def test_resume_may_change_the_thread_count(small_fer, tmp_path):
    Trainer(cfg(small_fer, epochs=1), tmp_path / "r", progress=False).fit()
    res = Trainer(cfg(small_fer, epochs=2, threads=2), tmp_path / "r", resume=True,
                  progress=False)
    with pytest.raises(ConfigError, match="other options"):   # epochs still count
        res.fit()
    Trainer(cfg(small_fer, epochs=1, threads=2), tmp_path / "r", resume=True,
            progress=False).fit()


def test_resume_may_switch_precision_and_sessions_record_it(small_fer, tmp_path):
    args = ["train", "--data", str(small_fer), "--model", "resnet_fast", "--width", "8",
            "--epochs", "2", "--batch-size", "32", "--out", str(tmp_path / "r"),
            "--no-progress", "--threads", "1", "--no-val-tta"]
    assert main([*args, "--bf16", "--stop-after", "1"]) == 0
    assert main([*args, "--resume", "--no-bf16"]) == 0
    rows = json.loads((tmp_path / "r" / "sessions.json").read_text())
    assert [(r["first_epoch"], r["last_epoch"], r["bf16"]) for r in rows] == [
        (1, 1, True), (2, 2, False)]
    assert all(r["cpu"] for r in rows)
    assert all(r["cpu_family_model"] == family_model() for r in rows)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["bf16"] is False
    assert checkpoint.load(tmp_path / "r" / "last.pt")["state"]["epoch"] == 2


def test_imbalance_options_and_subset_classes(small_fer, tmp_path):
    res = Trainer(cfg(small_fer, epochs=1, balance="sampler", classes="angry,happy,sad",
                      augment={"mixup": 0.2, "cutmix": 1.0}), tmp_path / "s",
                  progress=False).fit()
    assert res.val_report["classes"] == ["angry", "happy", "sad"]
    res = Trainer(cfg(small_fer, epochs=1, balance="weights", optimizer="sgd",
                      schedule="onecycle"), tmp_path / "w", progress=False).fit()
    assert 0 <= res.val_report["accuracy"] <= 1


def test_distillation_from_a_teacher_checkpoint(small_fer, tiny_run, tmp_path):
    res = Trainer(cfg(small_fer, epochs=1, distill=str(tiny_run / "best.pt")),
                  tmp_path / "d", progress=False).fit()
    assert res.best_epoch == 1


def test_unknown_option_and_bad_values_are_errors(small_fer):
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"data": str(small_fer), "learning_rate": 1})
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig.from_dict({"data": str(small_fer), "schedule": "linear"})


def test_cli_train_bad_data_exits_nonzero_without_trace(tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "no such file or folder" in capsys.readouterr().err
