import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from conftest import FER, real_faces

from ferkit.cli import main
from ferkit.errors import ModelError
from ferkit.evaluation.evaluate import evaluate
from ferkit.evaluation.metrics import classification_report
from ferkit.train import checkpoint
from ferkit.zoo.classify import OnnxClassifier

REQUIRED = {"accuracy", "macro_f1", "balanced_accuracy", "per_class",
            "per_class_accuracy_spread", "confusion_matrix", "ece", "n"}


def test_export_writes_onnx_card_and_slim_checkpoint(tiny_onnx):
    card = json.loads(tiny_onnx.with_suffix(".json").read_text())
    assert card["parity_max_prob_diff"] < 1e-4
    for key in ("labels", "input_size", "channels", "mean", "std", "training_data", "recipe",
                "metrics", "training", "source_commit", "onnx_sha256"):
        assert key in card, key
    assert card["labels"][0] == "angry" and card["input_size"] == 48
    assert card["metrics"]["val"]["n"] == 56
    assert card["training"]["hardware"]["threads"] == 1
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": np.zeros((5, 1, 48, 48), np.float32)})[0]
    assert out.shape == (5, 7)                       # dynamic batch
    slim = checkpoint.load(tiny_onnx.with_suffix(".pt"))
    assert "optimizer" not in slim and slim["classes"] == card["labels"]


def test_onnx_matches_torch_val_accuracy(tiny_run, tiny_onnx, small_fer):
    torch_acc = checkpoint.load(tiny_run / "best.pt")["val_report"]["accuracy"]
    rep = evaluate(small_fer, tiny_onnx)
    assert rep["accuracy"] == pytest.approx(torch_acc, abs=1e-9)


def test_evaluate_report_keys_and_plots(tiny_onnx, small_fer, tmp_path):
    rep = evaluate(small_fer, tiny_onnx, plots=tmp_path)
    assert REQUIRED <= set(rep)
    assert rep["n"] == 56 and np.array(rep["confusion_matrix"]).sum() == 56
    assert set(rep["per_class"]["happy"]) >= {"accuracy", "precision", "recall", "support"}
    for png in ("confusion_matrix.png", "reliability.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_folder_with_some_classes_scored_against_all_outputs(tiny_onnx, tmp_path):
    for cls in ("happy", "sad"):
        (tmp_path / cls).mkdir()
        for p in real_faces("val", cls, 4):
            shutil.copy(p, tmp_path / cls / p.name)
    (tmp_path / "sadness_alias").mkdir()
    rep = evaluate(tmp_path, tiny_onnx, skip_bad=True)
    assert rep["n"] == 8 and len(rep["confusion_matrix"]) == 7
    assert rep["per_class"]["neutral"]["support"] == 0


def test_metrics_on_a_known_case():
    probs = np.eye(3)[[0, 0, 1, 2, 2, 2]] * 0.9 + 0.1 / 3
    y = np.array([0, 1, 1, 2, 2, 0])
    rep = classification_report(probs, y, ["a", "b", "c"])
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert rep["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 2]]
    assert rep["per_class"]["c"]["precision"] == pytest.approx(2 / 3)
    assert rep["per_class_accuracy_spread"] == pytest.approx(1.0 - 0.5)


def test_classifier_accepts_any_size_and_colour(tiny_onnx, rng):
    clf = OnnxClassifier(tiny_onnx)
    faces = [rng.integers(0, 255, (100, 80, 3), dtype=np.uint8),
             rng.integers(0, 255, (48, 48), dtype=np.uint8),
             rng.integers(0, 255, (30, 30, 4), dtype=np.uint8)]
    p = clf.predict_proba(faces)
    assert p.shape == (3, 7)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)


def test_cli_evaluate_json_and_exit_codes(tiny_onnx, small_fer, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["evaluate", "--data", str(small_fer), "--model", str(tiny_onnx),
                 "--tta", "flip", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert REQUIRED <= set(rep) and rep["tta_flip"] is True
    assert main(["evaluate", "--data", str(small_fer), "--model", "nosuchmodel"]) == 2
    assert "no shipped model named 'nosuchmodel'" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    bad.with_suffix(".json").write_text(tiny_onnx.with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="bad.onnx"):
        OnnxClassifier(bad)


def test_cli_export_refuses_non_onnx_suffix(tiny_run, tmp_path, capsys):
    assert main(["export", str(tiny_run / "best.pt"), "--out", str(tmp_path / "m.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m.onnx")]) == 2


def test_evaluate_reads_the_challenge_csv(tiny_onnx, fer_csv):
    rep = evaluate(fer_csv, tiny_onnx, split="val")
    assert rep["n"] == 21


def test_models_json_lists_shipped(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    for r in rows:
        assert {"name", "path", "classes", "input_size"} <= set(r)


def test_shared_val_exists_for_benchmarks():
    assert (FER / "val" / "happy").is_dir()


def test_card_of_a_fine_tuned_run_lists_both_stages(tiny_run, small_fer, tmp_path):
    """A run started --init-from another run's checkpoint (e.g. the default's second cosine
    cycle): its card sums both stages' training time and names where it started."""
    from ferkit.zoo.export import export
    out = tmp_path / "stage2"
    assert main(["train", "--data", str(small_fer), "--model", "resnet_fast", "--width", "8",
                 "--epochs", "1", "--batch-size", "32", "--out", str(out), "--no-progress",
                 "--threads", "1", "--init-from", str(tiny_run / "best.pt")]) == 0
    card = export(out / "best.pt", tmp_path / "s2.onnx", evaluate_val=False)
    stages = card["training"]["stages"]
    assert [s["run"] for s in stages] == [tiny_run.name, "stage2"]
    assert stages[1]["init_from"] == str(tiny_run / "best.pt") and stages[0]["epochs"] == 2
    assert card["training"]["train_seconds"] == pytest.approx(
        sum(s["train_seconds"] for s in stages))


def test_paired_accuracy_mcnemar_exact():
    import numpy as np

    from ferkit.evaluation.evaluate import paired_accuracy
    a = np.array([1] * 10 + [0] * 2 + [1] * 5, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 5, bool)
    p = paired_accuracy(a, b)
    assert (p["only_a_right"], p["only_b_right"]) == (10, 2)
    # exact two-sided binomial(12, 1/2): 2 * P(X <= 2) = 2 * 79 / 4096
    assert p["mcnemar_p"] == pytest.approx(2 * 79 / 4096)
    assert p["difference"] == pytest.approx(8 / 17)
    assert paired_accuracy(a, a)["mcnemar_p"] == 1.0


def test_evaluate_compare_two_models_on_the_same_faces(small_fer, tmp_path, capsys):
    import json
    out = tmp_path / "cmp.json"
    assert main(["evaluate", "--data", str(small_fer / "val"), "--model", "default",
                 "--compare-model", "fast", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["a"]["model_name"] == "default" and res["b"]["model_name"] == "fast"
    assert res["paired"]["n"] == 56 == res["a"]["n"]
    assert res["paired"]["accuracy_a"] == pytest.approx(res["a"]["accuracy"])
    assert "McNemar p" in capsys.readouterr().out
    assert main(["evaluate", "--data", str(small_fer / "val"), "--model", "default",
                 "--compare-model", "ferplus"]) == 2
