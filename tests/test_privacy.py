"""DP-SGD through the real Opacus, the membership-inference audit, privacy in inference."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import SHARED

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.privacy.audit import attack_report, auc_ci95, dp_bounds, privacy_audit, roc
from ferkit.train import checkpoint
from ferkit.train.config import TrainConfig
from ferkit.train.private import DPConfig, train_private

MEDIA = SHARED / "media"


def cfg(data, **kw):
    base = dict(data=str(data), model="resnet_fast", width=8, norm="group", epochs=2,
                batch_size=64, threads=1, seed=0, val_tta=False, lr=0.01)
    base.update(kw)
    return TrainConfig.from_dict(base)


@pytest.fixture(scope="module")
def dp_run(small_fer, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    summary = train_private(cfg(small_fer, warmup_epochs=0), DPConfig(epsilon=3.0), out,
                            progress=False)
    return out, summary


def test_dp_training_spends_at_most_the_target_epsilon(dp_run):
    out, s = dp_run
    p = s["privacy"]
    assert 0 < p["epsilon"] <= 3.0 + 1e-6 and p["epsilon"] > 2.0
    assert p["delta"] == pytest.approx(1 / (10 * 168))
    assert p["accountant"] == "prv" and 0 < p["sample_rate"] < 1 and p["noise_multiplier"] > 0
    hist = json.loads((out / "history.json").read_text())
    eps = [h["epsilon"] for h in hist]
    assert eps == sorted(eps) and len(eps) == 2          # grows epoch by epoch
    # the cosine schedule steps per epoch: full lr, then half-way down to 1% of it
    assert [h["lr"] for h in hist] == pytest.approx([0.01, 0.01 * (0.01 + 0.99 * 0.5)])
    ck = checkpoint.load(out / "last.pt")
    assert ck["privacy"]["epsilon"] == pytest.approx(eps[-1])


def test_dp_model_card_carries_the_privacy_block(dp_run, tmp_path):
    from ferkit.zoo.export import export
    out, _ = dp_run
    card = export(out / "best.pt", tmp_path / "dp.onnx", evaluate_val=False)
    assert card["privacy"]["accountant"] == "prv" and card["privacy"]["delta"] > 0
    assert card["parity_max_prob_diff"] < 1e-4


def test_two_stage_head_only_on_a_batchnorm_model(small_fer, tiny_run, tmp_path):
    s = train_private(cfg(small_fer, epochs=1), DPConfig(epsilon=1.0, trainable="head",
                                                         init_from=str(tiny_run / "best.pt")),
                      tmp_path, progress=False)
    assert s["privacy"]["trainable"] == "head" and s["privacy"]["epsilon"] <= 1.0 + 1e-6
    before = checkpoint.load(tiny_run / "best.pt")["model"]
    after = checkpoint.load(tmp_path / "best.pt")["model"]
    assert not np.allclose(before["head.weight"], after["head.weight"])
    frozen = [k for k in before if k.startswith("features.") and "num_batches" not in k]
    assert all(np.allclose(before[k], after[k]) for k in frozen)   # backbone untouched


def test_augmentation_multiplicity_averages_each_faces_views(small_fer, tmp_path):
    """K identical views (no augmentation, no dropout) must give exactly the K=1 run: one
    clipped gradient per face, the same noise, the same weights. With augmentation on, the
    views differ and so do the weights."""
    off = {"flip": False, "rotate": 0, "scale": 0, "shift": 0, "erase_p": 0}
    runs = {}
    for k, aug in ((1, off), (3, off), (3, {})):
        out = tmp_path / f"k{k}{len(aug)}"
        s = train_private(cfg(small_fer, warmup_epochs=0, epochs=1, dropout=0.0, augment=aug),
                          DPConfig(epsilon=3.0, aug_multiplicity=k), out, progress=False)
        assert s["privacy"]["aug_multiplicity"] == k and s["privacy"]["epsilon"] <= 3.0 + 1e-6
        runs[k, len(aug)] = checkpoint.load(out / "last.pt")["model"]
    one, three, aug3 = runs[1, 5], runs[3, 5], runs[3, 0]
    for name in one:
        assert torch.allclose(one[name], three[name], atol=1e-5), name
    assert any(not torch.allclose(one[n], aug3[n], atol=1e-4) for n in one)
    with pytest.raises(ConfigError, match="ghost"):
        DPConfig(aug_multiplicity=2, grad_sample_mode="ghost").validate(cfg(small_fer))


def test_settings_that_break_the_guarantee_are_refused(small_fer, tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="BatchNorm"):
        train_private(cfg(small_fer, norm="batch"), DPConfig(), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="mixup"):
        train_private(cfg(small_fer, augment={"mixup": 0.2}), DPConfig(), tmp_path,
                      progress=False)
    with pytest.raises(ConfigError, match="SAM"):
        train_private(cfg(small_fer, sam_rho=0.05), DPConfig(), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="Poisson"):
        train_private(cfg(small_fer, balance="sampler"), DPConfig(), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="BatchNorm"):
        train_private(cfg(small_fer), DPConfig(trainable="last-block",
                                               init_from=str(tiny_run / "best.pt")),
                      tmp_path, progress=False)
    assert main(["train", "--data", str(small_fer), "--out", str(tmp_path / "r"), "--dp",
                 "--resume"]) == 2
    # not a guarantee breaker, but a schedule DP training cannot follow (it steps per epoch)
    with pytest.raises(ConfigError, match="onecycle"):
        train_private(cfg(small_fer, schedule="onecycle"), DPConfig(), tmp_path, progress=False)


def test_roc_and_bounds_on_known_scores():
    fpr, tpr, auc = roc(np.array([3.0, 2.0]), np.array([1.0, 0.0]))
    assert auc == 1.0
    rep = attack_report(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert rep["auc"] == pytest.approx(0.5)
    b = dp_bounds(1.0, 1e-5)
    assert b["accuracy_max"] == pytest.approx(math.e / (1 + math.e), abs=1e-4)
    assert 0.5 < b["auc_max"] < 0.8
    assert dp_bounds(0.0, 0.0)["auc_max"] == pytest.approx(0.5, abs=1e-3)


def test_auc_interval_covers_chance_when_the_scores_carry_nothing():
    lo, hi = auc_ci95(0.5, 2000, 2000)                   # Hanley & McNeil: SE 0.00913
    assert (hi - lo) / 2 == pytest.approx(1.96 * 0.00913, rel=0.01)
    rng = np.random.default_rng(0)
    covered = [attack_report(rng.normal(size=300), rng.normal(size=300))["auc_ci95"]
               for _ in range(200)]
    share = np.mean([lo <= 0.5 <= hi for lo, hi in covered])
    assert 0.9 <= share <= 0.99                          # a 95% interval, not a 50% or 100% one


def test_delong_paired_test_on_known_scores():
    """DeLong against a brute-force count, and pairing: a leak both attacks share face by
    face cancels, so a small real difference is detected that separate intervals miss."""
    from ferkit.privacy.roc_stats import delong_paired
    rng = np.random.default_rng(0)
    a_in, a_out = rng.normal(0.5, 1, 40).round(1), rng.normal(0, 1, 30).round(1)   # with ties
    psi = (a_in[:, None] > a_out[None]) + 0.5 * (a_in[:, None] == a_out[None])
    v10, v01 = psi.mean(1), psi.mean(0)
    var = v10.var(ddof=1) / 40 + v01.var(ddof=1) / 30          # DeLong variance of one AUC
    flat = delong_paired(a_in, a_out, np.zeros(40), np.zeros(30))   # vs an attack of AUC 0.5
    assert flat["auc_a"] == pytest.approx(psi.mean()) and flat["auc_b"] == 0.5
    assert flat["ci95"][1] - flat["difference"] == pytest.approx(1.96 * math.sqrt(var))
    same = delong_paired(a_in, a_out, a_in, a_out)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="same faces"):
        delong_paired(a_in, a_out, a_in[:-1], a_out)
    from ferkit.errors import ConfigError
    from ferkit.privacy.audit import compare_audits
    one = {"model": "m", "faces": "f", "n_members": 1, "n_non_members": 1,
           "attacks": {"loss_threshold": {"scores": (a_in[:1], a_out[:1])}}}
    with pytest.raises(ConfigError, match="at least 2"):        # a user error, not a crash
        compare_audits(one, dict(one, model="o"))
    with pytest.raises(ConfigError, match="different faces"):
        compare_audits(dict(one, n_members=40, n_non_members=30), dict(one, faces="g"))
    # 2000 + 2000 faces whose difficulty d dominates every score; a leaks a little more
    d_in, d_out = rng.normal(size=2000), rng.normal(size=2000)
    b_in, b_out = d_in + 0.1 + 0.2 * rng.normal(size=2000), d_out + 0.2 * rng.normal(size=2000)
    a_in2, a_out2 = b_in + 0.06, b_out.copy()
    r = delong_paired(a_in2, a_out2, b_in, b_out)
    ia, ib = (attack_report(x, y)["auc_ci95"] for x, y in ((a_in2, a_out2), (b_in, b_out)))
    assert ia[0] < ib[1]                                 # the separate intervals overlap ...
    assert r["difference"] > 0 and r["ci95"][0] > 0 and r["p_value"] < 1e-6   # ... paired: no
    # under the null (two attacks that carry nothing) p < 0.05 about 5% of the time
    ps = [delong_paired(*rng.normal(size=(4, 200)))["p_value"] for _ in range(200)]
    assert 0.01 <= np.mean(np.array(ps) < 0.05) <= 0.10


def test_audit_finds_the_leak_of_an_overfit_model(small_fer, tiny_run, tmp_path):
    """A model trained hard on 168 faces memorises them: the loss attack must see it."""
    from ferkit.train.trainer import Trainer
    Trainer(TrainConfig.from_dict(dict(data=str(small_fer), model="resnet_fast", width=16,
                                       epochs=12, batch_size=32, threads=1, lr=0.005,
                                       weight_decay=0.0, label_smoothing=0.0, val_tta=False,
                                       augment={"flip": False, "rotate": 0, "scale": 0,
                                                "shift": 0, "erase_p": 0})),
            tmp_path / "overfit", progress=False).fit()
    rep = privacy_audit(tmp_path / "overfit" / "best.pt", small_fer / "train",
                        SHARED / "datasets/fer2013/train", n=100, seed=1,
                        plots=tmp_path / "plots")
    assert rep["n_members"] == rep["n_non_members"] == 100
    assert rep["attacks"]["loss_threshold"]["auc"] > 0.7
    assert (tmp_path / "plots" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    # difficulty calibration: against a barely trained model the memorised faces stand out;
    # against the target itself every score is 0 and the attack can tell nothing
    kw = dict(n=100, seed=1)
    cal = privacy_audit(tmp_path / "overfit" / "best.pt", small_fer / "train",
                        SHARED / "datasets/fer2013/train", reference_model=tiny_run / "best.pt",
                        **kw)["attacks"]["reference_calibrated"]
    assert cal["auc"] > 0.7 and cal["reference_model"].endswith("best.pt")
    same = privacy_audit(tmp_path / "overfit" / "best.pt", small_fer / "train",
                         SHARED / "datasets/fer2013/train",
                         reference_model=tmp_path / "overfit" / "best.pt", **kw)
    assert same["attacks"]["reference_calibrated"]["auc"] == pytest.approx(0.5)
    # the overfit model leaks more than a barely trained one, on the same faces
    cmp = privacy_audit(tmp_path / "overfit" / "best.pt", small_fer / "train",
                        SHARED / "datasets/fer2013/train", compare_model=tiny_run / "best.pt",
                        **kw)["comparison"]
    loss = cmp["attacks"]["loss_threshold"]
    assert loss["auc_a"] == pytest.approx(rep["attacks"]["loss_threshold"]["auc"])
    assert loss["difference"] > 0.1 and loss["ci95"][0] > 0 and loss["p_value"] < 1e-3
    assert cmp["compared_report"]["faces"] == rep["faces"]
    assert "scores" not in cmp["compared_report"]["attacks"]["loss_threshold"]


def test_cli_audit_with_shadow_models_and_dp_bound(dp_run, small_fer, tmp_path, capsys):
    out, _ = dp_run
    reference = SHARED / "datasets/fer2013/test_never_here"
    assert main(["privacy-audit", "--model", str(out / "best.pt"), "--members",
                 str(small_fer / "train"), "--non-members", str(reference),
                 "--json", str(tmp_path / "a.json")]) == 2          # missing folder named
    assert "test_never_here" in capsys.readouterr().err
    ref = tmp_path / "ref"
    import shutil
    for cls in sorted((SHARED / "datasets/fer2013/train").iterdir()):
        (ref / cls.name).mkdir(parents=True)
        for p in sorted(cls.glob("*.jpg"))[100:130]:                # disjoint from small_fer
            shutil.copy(p, ref / cls.name / p.name)
    assert main(["privacy-audit", "--model", str(out / "best.pt"), "--members",
                 str(small_fer / "train"), "--non-members", str(small_fer / "val"),
                 "--reference", str(ref), "--shadow-models", "2", "--shadow-epochs", "1",
                 "--reference-model", str(out / "best.pt"),
                 "--json", str(tmp_path / "a.json")]) == 0
    rep = json.loads((tmp_path / "a.json").read_text())
    assert set(rep["attacks"]) == {"loss_threshold", "shadow_lira", "reference_calibrated"}
    assert "reference_calibrated" in capsys.readouterr().out
    assert main(["privacy-audit", "--model", str(out / "best.pt"), "--members",   # 8 classes
                 str(small_fer / "train"), "--non-members", str(small_fer / "val"),
                 "--reference-model", "ferplus", "--json", str(tmp_path / "b.json")]) == 2
    assert "must match" in capsys.readouterr().err and not (tmp_path / "b.json").exists()
    assert main(["privacy-audit", "--model", str(out / "best.pt"), "--members",
                 str(small_fer / "train"), "--non-members", str(small_fer / "val"),
                 "--compare-model", "ferplus", "--json", str(tmp_path / "b.json")]) == 2
    assert "compared model" in capsys.readouterr().err and not (tmp_path / "b.json").exists()
    assert main(["privacy-audit", "--model", str(out / "best.pt"), "--members",   # DP vs itself
                 str(small_fer / "train"), "--non-members", str(small_fer / "val"),
                 "--reference", str(ref), "--shadow-models", "1", "--shadow-epochs", "1",
                 "--compare-model", str(out / "best.pt"), "--json", str(tmp_path / "c.json")]) == 0
    c = json.loads((tmp_path / "c.json").read_text())["comparison"]
    assert set(c["attacks"]) == {"loss_threshold", "shadow_lira"}
    assert all(x["difference"] == 0 and x["p_value"] == 1 for x in c["attacks"].values())
    assert "DeLong" in capsys.readouterr().out
    assert rep["n_members"] == rep["n_non_members"] == 56
    assert rep["dp_bound"]["epsilon"] == rep["privacy"]["epsilon"]
    for a in rep["attacks"].values():
        assert a["auc"] <= rep["dp_bound"]["auc_max"] + 0.1


def test_aggregate_only_writes_no_face_rows(tmp_path):
    assert main(["analyze", str(MEDIA / "two_people.jpg"), str(MEDIA / "obama-480p.jpg"),
                 "--out", str(tmp_path), "--aggregate-only", "--no-progress"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert "faces.jsonl" not in names and "faces.csv" not in names and "crops" not in names
    rows = (tmp_path / "photos.csv").read_text().splitlines()
    assert rows[0].startswith("source,faces,negative") and len(rows) == 3
    assert main(["analyze", str(MEDIA / "two_people.jpg"), "--out", str(tmp_path / "x"),
                 "--aggregate-only", "--annotate"]) == 2


def test_analysis_writes_no_face_pixels_unless_asked(tmp_path):
    assert main(["analyze", str(MEDIA / "two_people.jpg"), "--out", str(tmp_path),
                 "--no-progress"]) == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.suffix in (".jsonl", ".csv", ".json") for p in files)


def test_in_memory_audit_reuses_its_shadow_models(dp_run, small_fer, tmp_path):
    """One set of shadow models serves every audited model (issue 4's table audits eight)."""
    from ferkit.data import load_dataset
    from ferkit.privacy.audit import audit_arrays
    out, _ = dp_run
    train, val = load_dataset(small_fer, "train"), load_dataset(small_fer, "val")
    ref = load_dataset(SHARED / "datasets/fer2013/val", None).subset(np.arange(0, 3500, 25))
    kw = dict(n=40, seed=0, reference=ref, shadow_models=2, workdir=tmp_path / "sh",
              shadow_recipe={"epochs": 1})
    first = audit_arrays(out / "best.pt", train, val, **kw)
    made = sorted(p.name for p in (tmp_path / "sh").iterdir())
    assert len(made) == 2 and all((tmp_path / "sh" / m / "phi.npy").is_file() for m in made)
    stamp = [(tmp_path / "sh" / m / "phi.npy").stat().st_mtime_ns for m in made]
    again = audit_arrays(out / "best.pt", train, val, **kw)
    assert [(tmp_path / "sh" / m / "phi.npy").stat().st_mtime_ns for m in made] == stamp
    assert again["attacks"]["shadow_lira"]["auc"] == first["attacks"]["shadow_lira"]["auc"]
