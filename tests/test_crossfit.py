"""Cross-fitting: stratified folds, fold runs, out-of-fold logits and a student on them,
with the real trainer and CLI on real FER2013 faces."""
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import interrupt_after

from ferkit.cli import main
from ferkit.data import load_dataset
from ferkit.data.folds import fold_ids, fold_mask, parse_fold
from ferkit.errors import ConfigError, DataError
from ferkit.train import checkpoint
from ferkit.train.config import TrainConfig
from ferkit.train.crossfit import load_targets
from ferkit.train.loop import images_to_tensor, predict_logits
from ferkit.train.trainer import Trainer

TINY = ["--model", "resnet_fast", "--width", "8", "--epochs", "1", "--batch-size", "32",
        "--threads", "1", "--no-progress"]


def test_folds_are_stratified_seeded_and_cover_every_face():
    labels = np.repeat(np.arange(7), [40, 5, 41, 70, 48, 31, 49])
    ids = fold_ids(labels, 5, seed=0)
    assert np.array_equal(ids, fold_ids(labels, 5, seed=0))
    assert not np.array_equal(ids, fold_ids(labels, 5, seed=1))
    for c in range(7):
        per_fold = np.bincount(ids[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    assert fold_mask(labels, "2/5").sum() == (ids != 1).sum()
    assert parse_fold(" 3 / 4 ") == (3, 4)
    for bad in ("0/5", "6/5", "1/1", "a/b", "2"):
        with pytest.raises(ConfigError, match="fold"):
            parse_fold(bad)
    with pytest.raises(ConfigError, match="fold"):
        TrainConfig.from_dict({"data": "x", "fold": "3/2"})


@pytest.fixture(scope="module")
def fold_runs(small_fer, tmp_path_factory):
    root = tmp_path_factory.mktemp("folds")
    for i in (1, 2):
        rc = main(["train", "--data", str(small_fer), "--out", str(root / f"f{i}"),
                   "--fold", f"{i}/2", "--fold-seed", "4", *TINY])
        assert rc == 0
    return root


def test_fold_runs_train_on_the_rest_and_crossfit_scores_the_fold_left_out(
        small_fer, fold_runs, tmp_path, capsys):
    train = load_dataset(small_fer, "train")
    ids = fold_ids(train.labels, 2, seed=4)
    for i in (1, 2):
        counts = json.loads((fold_runs / f"f{i}" / "summary.json").read_text())["train_counts"]
        assert sum(counts.values()) == (ids != i - 1).sum() == len(train) // 2
    out = tmp_path / "oof.npz"
    assert main(["crossfit", str(fold_runs / "f2"), str(fold_runs / "f1"),
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["faces"] == len(train) and [f["fold"] for f in report["folds"]] == [1, 2]
    with np.load(out) as z:
        logits, paths = z["logits"], list(z["paths"])
    assert paths == train.paths
    for i in (1, 2):                  # each face scored (with flip) by the run without it
        ck = checkpoint.load(fold_runs / f"f{i}" / "best.pt")
        idx = np.flatnonzero(ids == i - 1)
        with torch.no_grad():
            z = predict_logits(checkpoint.build_from_checkpoint(ck),
                               images_to_tensor(train.images[idx]),
                               ck["model_config"]["mean"], ck["model_config"]["std"], tta=True)
        np.testing.assert_allclose(logits[idx], z.numpy(), rtol=1e-4, atol=1e-4)
    pred = logits.argmax(1)
    assert report["oof_accuracy"] == pytest.approx(float((pred == train.labels).mean()))
    probs = load_targets(out, train.subset(np.arange(10)[::-1]), 2.0)
    np.testing.assert_allclose(probs.numpy(), torch.softmax(
        torch.from_numpy(logits[np.arange(10)[::-1]]) / 2.0, 1).numpy(), rtol=1e-6)


def test_a_student_learns_from_the_out_of_fold_targets(small_fer, fold_runs, tmp_path):
    out = tmp_path / "oof.npz"
    assert main(["crossfit", str(fold_runs / "f1"), str(fold_runs / "f2"),
                 "--out", str(out)]) == 0
    assert main(["train", "--data", str(small_fer), "--out", str(tmp_path / "s"),
                 "--distill-targets", str(out), "--distill-alpha", "0.5", *TINY]) == 0
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["distill_targets"] == str(out)


def test_crossfit_refuses_incomplete_or_mismatched_folds(small_fer, fold_runs, tmp_path, capsys):
    assert main(["crossfit", str(fold_runs / "f1"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "each fold of one K exactly once" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
    main(["train", "--data", str(small_fer), "--out", str(tmp_path / "g"), "--fold", "2/2",
          "--fold-seed", "5", *TINY])
    assert main(["crossfit", str(fold_runs / "f1"), str(tmp_path / "g"),
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "fold_seed" in capsys.readouterr().err
    assert main(["crossfit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.npz")]) == 2


def test_targets_from_other_data_or_a_bad_file_are_refused(small_fer, fold_runs, tmp_path):
    out = tmp_path / "oof.npz"
    main(["crossfit", str(fold_runs / "f1"), str(fold_runs / "f2"), "--out", str(out)])
    val = load_dataset(small_fer, "val")
    with pytest.raises(DataError, match="no targets for 56 of 56"):
        load_targets(out, val, 1.0)
    sub = load_dataset(small_fer, "train").subset(np.arange(5))
    sub.classes = sub.classes[::-1]
    with pytest.raises(DataError, match="classes"):
        load_targets(out, sub, 1.0)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz: not a crossfit targets file"):
        load_targets(bad, val, 1.0)
    with pytest.raises(ConfigError, match="not found"):
        load_targets(tmp_path / "none.npz", val, 1.0)
    with pytest.raises(ConfigError, match="exclusive"):
        TrainConfig.from_dict({"data": "x", "distill": "t.pt", "distill_targets": str(out)})


def test_a_checkpoint_written_before_the_fold_options_still_resumes(small_fer, tmp_path,
                                                                    monkeypatch):
    kw = dict(data=str(small_fer), model="resnet_fast", width=8, epochs=2, batch_size=32,
              threads=1, seed=3, val_tta=False)
    run = Trainer(TrainConfig.from_dict(kw), tmp_path / "r", progress=False)
    interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    monkeypatch.undo()
    last = tmp_path / "r" / "last.pt"
    ck = torch.load(last, weights_only=False)
    for key in ("fold", "fold_seed", "distill_targets"):
        del ck["config"][key]
    checkpoint.save(last, ck)
    res = Trainer(TrainConfig.from_dict(kw), tmp_path / "r", resume=True, progress=False).fit()
    assert json.loads((tmp_path / "r" / "history.json").read_text())[-1]["epoch"] == 2
    assert res.best_epoch in (1, 2)


def test_crossfit_folds_script_trains_each_fold_once_then_writes_the_targets(small_fer,
                                                                             tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "FERKIT": str(Path(sys.executable).parent / "ferkit")}
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"data: {small_fer}\nmodel: resnet_fast\nwidth: 8\nepochs: 1\n"
                      "batch_size: 32\nthreads: 1\n")
    script = str(root / "scripts" / "crossfit_folds.sh")
    out = tmp_path / "cf"
    r = subprocess.run(["bash", script, str(recipe), "2", str(out), "--no-progress"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((out / "oof.json").read_text())
    assert report["k"] == 2 and report["faces"] == 168
    with np.load(out / "oof.npz") as z:
        assert z["logits"].shape == (168, 7)
    mtime = (out / "fold_1" / "best.pt").stat().st_mtime
    r = subprocess.run(["bash", script, str(recipe), "2", str(out), "--no-progress"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("is done") == 2
    assert (out / "fold_1" / "best.pt").stat().st_mtime == mtime
    # a finished fold kept as its float16 best weights stands in for its lost run folder
    with np.load(out / "oof.npz") as z:
        before = z["logits"]
    carry = tmp_path / "carry"
    carry.mkdir()
    from ferkit.train import snapshot
    snapshot.pack_best(out / "fold_1", carry / "fold_1.pt")
    shutil.rmtree(out / "fold_1")
    r = subprocess.run(["bash", script, str(recipe), "2", str(out), "--no-progress"],
                       env={**env, "CROSSFIT_CARRY": str(carry)}, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "carried as" in r.stdout, r.stderr[-2000:]
    assert not (out / "fold_1").exists()
    with np.load(out / "oof.npz") as z:
        np.testing.assert_allclose(z["logits"], before, atol=0.05)
    bad = subprocess.run(["bash", script, str(recipe), "1", str(out)], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "K must be >= 2" in bad.stderr
