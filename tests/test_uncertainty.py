import json
import shutil

import numpy as np
import pytest
from conftest import SHARED

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.evaluation.calibration import (
    apply_top_label_map,
    cross_fitted_ece,
    fit_temperature,
    fit_top_label_map,
    mc_statistics,
    nll,
    selective,
)
from ferkit.evaluation.evaluate import calibrate, evaluate
from ferkit.evaluation.metrics import expected_calibration_error
from ferkit.zoo.classify import OnnxClassifier


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


def test_top_label_map_fixes_what_one_temperature_cannot(rng):
    """Label smoothing's shape: over-confident in the middle, under-confident at the top.
    The map, fitted on one half, calibrates the other; predicted labels never change."""
    n, k = 6000, 7
    z = rng.normal(size=(n, k)) * 2.5
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    conf = p.max(1)
    true_acc = np.interp(conf, [0.2, 0.5, 0.8, 0.9, 1.0], [0.2, 0.43, 0.73, 0.97, 0.99])
    correct = rng.random(n) < true_acc
    y = np.where(correct, p.argmax(1), (p.argmax(1) + rng.integers(1, k, n)) % k)
    a, b = slice(0, n // 2), slice(n // 2, n)
    kx, ky = fit_top_label_map(p[a], y[a], bins=15)
    assert (np.diff(ky) >= 0).all() and (np.diff(kx) > 0).all()
    q = apply_top_label_map(p[b], kx, ky)
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-9)
    assert (q.argmax(1) == p[b].argmax(1)).all()
    t = fit_temperature(np.log(p[a]), y[a])
    ts = np.exp(np.log(p[b]) / t)
    ts /= ts.sum(1, keepdims=True)
    e_map = expected_calibration_error(q, y[b])[0]
    best_single = min(expected_calibration_error(ts, y[b])[0],
                      expected_calibration_error(p[b], y[b])[0])
    assert e_map < 0.6 * best_single and e_map < 0.03
    cf = cross_fitted_ece(np.log(p), y, bins=15)
    assert cf["temperature+top_label_map"] < cf["temperature"]


def test_top_label_map_keeps_the_top_class_when_it_lowers_confidence():
    p = np.array([[0.45, 0.40, 0.15], [0.9, 0.05, 0.05]])
    q = apply_top_label_map(p, [0.0, 1.0], [0.1, 0.1])          # maps every top to 0.1
    assert (q.argmax(1) == [0, 0]).all() and q[0, 0] > q[0, 1]
    np.testing.assert_allclose(q.sum(1), 1)


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
    before = evaluate(small_fer, model)
    block = calibrate(model, small_fer, bins=0)                 # temperature only
    assert "top_label_map" not in block
    assert block["nll_after"] <= block["nll_before"] + 1e-9
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["temperature"] == pytest.approx(block["temperature"])
    assert evaluate(small_fer, model)["ece"] == pytest.approx(block["ece_after"], abs=1e-6)
    block = calibrate(model, small_fer, bins=5)                 # + top-label map
    assert len(block["top_label_map"]["x"]) <= 5
    assert set(block["ece_cross_fitted"]) >= {"temperature", "temperature+top_label_map"}
    rep = evaluate(small_fer, model, plots=tmp_path / "p")
    assert rep["temperature"] == pytest.approx(block["temperature"]) and rep["top_label_map"]
    assert rep["ece"] == pytest.approx(block["ece_after_map"], abs=1e-6)
    assert rep["accuracy"] == before["accuracy"]               # labels unchanged
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
