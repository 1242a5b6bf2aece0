import json
import shutil

import numpy as np
import pytest
from conftest import CLASSES, FER, ROOT

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.train import checkpoint
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
    recipe = tmp_path / "noisy.yaml"             # the shipped noisy-student options
    recipe.write_text((ROOT / "recipes" / "noisy_student.yaml").read_text())
    args = ["pseudo-label", "--model", str(tiny_run / "best.pt"), "--labeled",
            str(small_fer), "--unlabeled", str(unl), "--rounds", "1", "--curriculum", "0.5",
            "--max-mutual-info", "10", "--soft", "--restart", "--epochs-per-round", "1",
            "--out", str(out), "--no-progress"]
    assert main(args + ["--recipe", str(recipe)]) == 0
    r1 = json.loads((out / "rounds.json").read_text())["rounds"][0]
    assert r1["purity"] is None and 0 < r1["temperature"] < 20
    assert 0 < r1["selected"] <= 28
    cfg = json.loads((out / "round1" / "config.json").read_text())
    start = json.loads(json.dumps(checkpoint.load(tiny_run / "best.pt")["config"]))
    assert cfg["soft_labels"] is True and cfg["warmup_epochs"] == 1.0
    # the recipe's augment keys replace the starting model's, the others are kept
    assert cfg["augment"] == {**start["augment"], "rotate": 20.0, "scale": 0.2, "shift": 0.15,
                              "erase_p": 0.5} != start["augment"]
    assert cfg["lr"] == pytest.approx(start["lr"] * 0.3) and cfg["epochs"] == 1


@pytest.mark.parametrize("text, says", [("epochs: 3\n", "epochs cannot be set here"),
                                        ("augment: {spin: 1}\n", "unknown augment option"),
                                        ("augment: 3\n", "augment must be a mapping")])
def test_pseudo_label_recipe_mistakes_name_the_file(tiny_run, small_fer, tmp_path, capsys,
                                                    text, says):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    assert main(["pseudo-label", "--model", str(tiny_run / "best.pt"), "--labeled",
                 str(small_fer), "--unlabeled", str(small_fer), "--recipe", str(recipe),
                 "--out", str(tmp_path / "pl"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(recipe) in err and says in err
    assert not (tmp_path / "pl").exists()


def test_fixmatch_refuses_a_rounds_recipe(tiny_run, small_fer, tmp_path, capsys):
    recipe = tmp_path / "noisy.yaml"
    recipe.write_text((ROOT / "recipes" / "noisy_student.yaml").read_text())
    assert main(["pseudo-label", "--method", "fixmatch", "--model", str(tiny_run / "best.pt"),
                 "--labeled", str(small_fer), "--unlabeled", str(small_fer), "--recipe",
                 str(recipe), "--out", str(tmp_path / "fm"), "--no-progress"]) == 2
    assert "--method rounds" in capsys.readouterr().err
    assert not (tmp_path / "fm").exists()


def test_fixmatch_alignment_and_class_adaptive_thresholds():
    import torch

    from ferkit.train.fixmatch import Thresholds, align
    prior = torch.full((3,), 1 / 3)
    p = torch.tensor([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1]])
    q, run = align(p, prior, prior.clone(), momentum=0.0)       # predicted: class 0 too often
    assert torch.allclose(q.sum(1), torch.ones(2)) and (q[:, 0] < p[:, 0]).all()
    assert torch.allclose(run, p.mean(0))
    idx = np.arange(10)
    flex = Thresholds("flex", 0.9, 3, 10)
    assert torch.all(flex.per_class() == 0)                    # warm-up: every face is taken
    flex.status = torch.tensor([0] * 6 + [1] * 2 + [-1] * 2)  # class 0 learnt, 1 some, 2 not
    t = flex.per_class()
    assert t[0] == pytest.approx(0.9) and 0 < t[1] < t[0] and t[2] == 0
    probs = torch.tensor([[0.85, 0.1, 0.05]] * 5 + [[0.1, 0.85, 0.05]] * 5)
    mask, pseudo = flex(probs, idx)
    assert mask.tolist() == [False] * 5 + [True] * 5            # 0.85 < 0.9 only for class 0
    assert flex.status.tolist() == [-1] * 10                   # none over 0.9: status reset
    fixed = Thresholds("fixed", 0.8, 3, 10)
    assert fixed(probs, idx)[0].all() and torch.all(fixed.per_class() == 0.8)
    free = Thresholds("self", 0.95, 3, 10, momentum=0.5)
    mask, _ = free(probs, idx)          # tau = mean top confidence 0.85; class 2 rarely likely
    assert free.tau == pytest.approx(0.85) and mask.all()
    assert free.per_class()[2] < free.per_class()[0] == pytest.approx(0.85)
    with pytest.raises(ConfigError, match="fixed, flex or self"):
        Thresholds("soft", 0.9, 3, 10)


def test_fixmatch_cli_logs_purity_resumes_and_refuses_bad_options(tiny_run, small_fer, tmp_path,
                                                                  capsys):
    out = tmp_path / "fm"
    args = ["pseudo-label", "--method", "fixmatch", "--model", str(tiny_run / "best.pt"),
            "--labeled", str(small_fer / "train"), "--unlabeled", str(small_fer / "val"),
            "--val", str(small_fer / "val"), "--epochs", "2", "--mu", "2", "--batch-size",
            "16", "--threshold", "0.5", "--threads", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    hist = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2]
    e = hist["epochs"][0]
    assert e["of"] == 56 and e["selected"] == sum(e["per_class"].values())
    assert e["purity"] is None or 0 <= e["purity"] <= 1      # hidden labels: the class folders
    assert (out / "last.pt").is_file()
    assert "over the threshold" in capsys.readouterr().out
    mtime = (out / "last.pt").stat().st_mtime_ns
    assert main(args) == 0                                   # finished: resumed, nothing trained
    assert (out / "last.pt").stat().st_mtime_ns == mtime
    assert json.loads((out / "history.json").read_text())["epochs"] == hist["epochs"]
    bad = [a if a != str(out) else str(tmp_path / "x") for a in args] + ["--threshold", "1.5"]
    assert main(bad) == 2 and not (tmp_path / "x").exists()
    assert "threshold" in capsys.readouterr().err


def test_fixmatch_interrupted_and_resumed_equals_one_run(tiny_run, small_fer, tmp_path):
    """Checkpoint and resume: one epoch, stop, resume for the second gives the same epochs
    (pseudo-labels taken, purity, val accuracy) and weights as two epochs in one go."""
    import torch

    from ferkit.data import load_dataset
    from ferkit.labels import ClassSpec
    from ferkit.train.fixmatch import FixMatchConfig, fixmatch
    kw = dict(size=48, channels=1, spec=ClassSpec(CLASSES))
    lab, val = (load_dataset(small_fer / s, None, **kw) for s in ("train", "val"))
    unl = load_dataset(small_fer / "train", None, **kw)
    fc = FixMatchConfig(epochs=2, batch_size=16, mu=2, threads=1)   # self-adaptive: stateful
    one = fixmatch(tiny_run / "best.pt", lab, unl, val, tmp_path / "one", fc, progress=False)
    part = fixmatch(tiny_run / "best.pt", lab, unl, val, tmp_path / "two", fc, progress=False,
                    stop_after=1)
    assert len(part["epochs"]) == 1
    two = fixmatch(tiny_run / "best.pt", lab, unl, val, tmp_path / "two", fc, progress=False)
    strip = lambda r: [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]  # noqa: E731
    assert strip(two) == strip(one) and one["epochs"][0]["selected"] > 0
    w1, w2 = (torch.load(tmp_path / d / "last.pt", weights_only=False)["ema"] for d in ("one", "two"))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
