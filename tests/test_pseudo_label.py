import json
import shutil

import numpy as np
import pytest
from conftest import FER

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.train.pseudo_label import PseudoConfig, class_quota, select


def test_class_quota_stops_one_class_taking_over():
    n = np.array([500, 10, 40, 60, 0])
    m = class_quota(n, 0.3)
    taken = np.minimum(n, m)
    assert taken.max() <= 0.3 * taken.sum() and m >= 10
    assert class_quota(np.array([100, 5]), 0.3) == 5        # cap infeasible: equalise


def test_select_needs_confidence_and_low_mutual_info():
    mean = np.array([[0.97, 0.03], [0.96, 0.04], [0.6, 0.4], [0.02, 0.98]])
    stats = {"mean": mean, "mutual_info": np.array([0.01, 0.5, 0.0, 0.01])}
    keep = select(stats, PseudoConfig(threshold=0.95, max_mutual_info=0.05, class_cap=1.0), 2)
    assert list(keep) == [0, 3]


def test_curriculum_takes_the_top_share_of_every_class_growing_by_round():
    # class 0 predicted for 6 faces, class 1 for 4; face 1 is confident but uncertain (MI)
    p0 = np.array([0.99, 0.98, 0.9, 0.8, 0.7, 0.6])
    p1 = np.array([0.55, 0.95, 0.65, 0.75])
    mean = np.concatenate([np.stack([p0, 1 - p0], 1), np.stack([1 - p1, p1], 1)])
    mi = np.zeros(10)
    mi[1] = 0.5
    stats = {"mean": mean, "mutual_info": mi}
    pc = PseudoConfig(curriculum=0.5, max_mutual_info=0.05)
    # round 1: top 3 of class 0 (faces 0, 1, 2; 1 dropped for MI), top 2 of class 1 (7, 9)
    assert list(select(stats, pc, 2, 1)) == [0, 2, 7, 9]
    assert list(select(stats, pc, 2, 2)) == [0, 2, 3, 4, 5, 6, 7, 8, 9]   # everything certain
    with pytest.raises(ConfigError, match="curriculum"):
        PseudoConfig(curriculum=1.5).validate()


def test_pseudo_label_rounds_log_counts_purity_and_pick_the_best(tiny_run, small_fer, tmp_path):
    unl = tmp_path / "unl"
    for cls in sorted((FER / "train").iterdir()):
        (unl / cls.name).mkdir(parents=True)
        for p in sorted(cls.glob("*.jpg"))[300:310]:               # hidden labels
            shutil.copy(p, unl / cls.name / p.name)
    out = tmp_path / "pl"
    assert main(["pseudo-label", "--model", str(tiny_run / "best.pt"), "--labeled",
                 str(small_fer), "--unlabeled", str(unl), "--rounds", "2", "--threshold", "0.0",
                 "--max-mutual-info", "10", "--class-cap", "0.5", "--epochs-per-round", "1",
                 "--out", str(out), "--no-progress"]) == 0
    log = json.loads((out / "rounds.json").read_text())
    assert [r["round"] for r in log["rounds"]] == [1, 2]
    r1 = log["rounds"][0]
    assert r1["of"] == 70 and r1["selected"] == sum(r1["per_class"].values()) > 0
    assert 0.0 <= r1["purity"] <= 1.0
    assert max(r1["per_class"].values()) <= 0.5 * r1["selected"] or \
        len([v for v in r1["per_class"].values() if v]) < 2
    best = log["best"]
    assert best["val_accuracy"] >= log["start"]
    assert (out / "best.pt").exists() == (best["round"] > 0)
    # a third round continues the run: rounds 1-2 are kept as they were, not retrained
    stamp = (out / "round1" / "best.pt").stat().st_mtime_ns
    assert main(["pseudo-label", "--model", str(tiny_run / "best.pt"), "--labeled",
                 str(small_fer), "--unlabeled", str(unl), "--rounds", "3", "--threshold", "0.0",
                 "--max-mutual-info", "10", "--class-cap", "0.5", "--epochs-per-round", "1",
                 "--out", str(out), "--no-progress"]) == 0
    log3 = json.loads((out / "rounds.json").read_text())
    assert log3["rounds"][:2] == log["rounds"] and log3["rounds"][2]["round"] == 3
    assert (out / "round1" / "best.pt").stat().st_mtime_ns == stamp


def test_curriculum_soft_restart_round_trains_on_distributions(tiny_run, small_fer, tmp_path):
    unl = tmp_path / "unl"
    unl.mkdir()
    for cls in sorted((FER / "train").iterdir()):                 # no hidden labels
        for p in sorted(cls.glob("*.jpg"))[300:304]:
            shutil.copy(p, unl / f"{cls.name}_{p.name}")
    out = tmp_path / "pl"
    assert main(["pseudo-label", "--model", str(tiny_run / "best.pt"), "--labeled",
                 str(small_fer), "--unlabeled", str(unl), "--rounds", "1", "--curriculum", "0.5",
                 "--max-mutual-info", "10", "--soft", "--restart", "--epochs-per-round", "1",
                 "--out", str(out), "--no-progress"]) == 0
    r1 = json.loads((out / "rounds.json").read_text())["rounds"][0]
    assert r1["purity"] is None and 0 < r1["temperature"] < 20
    assert 0 < r1["selected"] <= 28
    cfg = json.loads((out / "round1" / "config.json").read_text())
    assert cfg["soft_labels"] is True
