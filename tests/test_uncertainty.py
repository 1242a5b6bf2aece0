import json
import shutil

import numpy as np
import pytest
from conftest import SHARED

from ferkit.analysis.classify import OnnxClassifier
from ferkit.calibration import fit_temperature, mc_statistics, nll, selective
from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.evaluate import calibrate, evaluate


def test_temperature_recovers_a_known_scale(rng):
    labels = rng.integers(0, 5, 4000)
    true = rng.normal(size=(4000, 5))
    true[np.arange(4000), labels] += 2.0
    z = true * 3.0                                   # over-confident by a factor 3
    # sample labels from the true model so that T = 3 is the right answer
    p = np.exp(true) / np.exp(true).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(z, y)
    assert 2.6 < t < 3.4
    assert nll(z, y, t) < nll(z, y, 1.0)


def test_selective_accuracy_and_mc_statistics():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45], [0.51, 0.49]])
    labels = np.array([0, 0, 1, 0, 1])
    cov, acc, at = selective(probs, labels)
    assert acc[0] == 1.0 and acc[-1] == pytest.approx(3 / 5)
    assert at["0.8"] == pytest.approx(3 / 4)
    same = mc_statistics(np.stack([probs, probs]))
    np.testing.assert_allclose(same["mutual_info"], 0, atol=1e-9)
    diff = mc_statistics(np.stack([probs, probs[:, ::-1]]))
    assert (diff["mutual_info"] > 0).all() and (diff["std"] > 0).all()


def test_mc_dropout_through_onnx_runtime(tiny_onnx, small_fer):
    from ferkit.data import load_dataset
    clf = OnnxClassifier(tiny_onnx, tta=False)
    faces = load_dataset(small_fer, "val").images[:20]
    mc = clf.predict_mc(faces, passes=30, seed=1)
    assert mc["mean"].shape == (20, 7)
    np.testing.assert_allclose(mc["mean"].sum(1), 1, atol=1e-5)
    assert (mc["mutual_info"] >= -1e-9).all() and (mc["std"] > 0).any()
    again = clf.predict_mc(faces, passes=30, seed=1)
    np.testing.assert_allclose(mc["mean"], again["mean"])
    # the embedding + head in numpy reproduce the ONNX logits exactly when dropout is off
    x = clf.preprocess(faces)
    head = clf._load_head()
    z = clf.embeddings(x) @ head["weight"].T + head["bias"]
    np.testing.assert_allclose(z, clf.logits(x), rtol=1e-4, atol=1e-4)


def test_calibrate_stores_temperature_and_evaluate_reports_both_eces(tiny_onnx, small_fer,
                                                                     tmp_path):
    model = tmp_path / "m.onnx"
    for ext in (".onnx", ".json", ".head.npz"):
        shutil.copy(str(tiny_onnx).replace(".onnx", ext), str(model).replace(".onnx", ext))
    block = calibrate(model, small_fer)
    assert block["nll_after"] <= block["nll_before"] + 1e-9
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["temperature"] == pytest.approx(block["temperature"])
    rep = evaluate(small_fer, model, plots=tmp_path / "p")
    assert rep["temperature"] == pytest.approx(block["temperature"])
    assert rep["ece"] == pytest.approx(block["ece_after"], abs=1e-6)
    assert rep["ece_uncalibrated"] == pytest.approx(block["ece_before"], abs=1e-6)
    assert set(rep["accuracy_at_coverage"]) == {"0.8", "0.9"}
    assert (tmp_path / "p" / "selective.png").is_file()
    rep_mc = evaluate(small_fer, model, mc_dropout=5)
    assert rep_mc["mc_dropout_passes"] == 5 and 0 <= rep_mc["accuracy"] <= 1


def test_abstain_answers_uncertain(tmp_path):
    media = SHARED / "media" / "two_people.jpg"
    assert main(["analyze", str(media), "--out", str(tmp_path / "a"), "--abstain", "prob:1.01",
                 "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "a" / "faces.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["uncertain", "uncertain"]
    assert main(["analyze", str(media), "--out", str(tmp_path / "b"), "--abstain", "entropy:99",
                 "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "b" / "faces.jsonl").read_text().splitlines()]
    assert all(r["label"] != "uncertain" for r in rows)
    assert main(["analyze", str(media), "--out", str(tmp_path / "c"), "--abstain", "p<0.3"]) == 2
    from ferkit.analysis.pipeline import AnalyzerConfig
    with pytest.raises(ConfigError, match="prob:THRESHOLD"):
        AnalyzerConfig.build(abstain="prob:x")


def test_analyze_with_mc_dropout_reports_mutual_information(tmp_path, capsys):
    import csv

    from ferkit.cli import main
    photo = str(SHARED / "media" / "obama_and_biden.jpg")
    assert main(["analyze", photo, "--out", str(tmp_path / "a"), "--mc-dropout", "16",
                 "--no-progress"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "a" / "faces.csv")))
    assert len(rows) == 3
    for r in rows:
        assert float(r["mutual_info"]) > 0 and float(r["entropy"]) > 0
        assert r["label"] != "uncertain"
    assert main(["analyze", photo, "--out", str(tmp_path / "b"), "--mc-dropout", "16",
                 "--abstain", "mi:0", "--no-progress"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "b" / "faces.csv")))
    assert {r["label"] for r in rows} == {"uncertain"}
    assert main(["analyze", photo, "--out", str(tmp_path / "c"), "--abstain", "mi:0.1"]) == 2
    assert "needs --mc-dropout" in capsys.readouterr().err
    assert main(["analyze", photo, "--out", str(tmp_path / "d"), "--no-progress"]) == 0
    plain = list(csv.DictReader(open(tmp_path / "d" / "faces.csv")))
    assert "mutual_info" not in plain[0] and "entropy" not in plain[0]   # the output contract
    rows = [json.loads(line) for line in open(tmp_path / "a" / "faces.jsonl")]
    assert all(r["mutual_info"] > 0 for r in rows)
