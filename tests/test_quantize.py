"""`ferkit quantize`: int8 QDQ copy of a shipped model, calibrated on real training faces."""
import json

import numpy as np
import onnx
import pytest

from ferkit.cli import main
from ferkit.data import load_dataset
from ferkit.zoo.classify import OnnxClassifier


def test_quantize_fast_model(small_fer, tmp_path, capsys):
    out = tmp_path / "fast_int8.onnx"
    rc = main(["quantize", "--model", "fast", "--calib-data", str(small_fer), "--n", "64",
               "--out", str(out), "--val", str(small_fer)])
    assert rc == 0
    card = json.loads(out.with_suffix(".json").read_text())
    q = card["quantization"]
    assert q["weights"] == "int8" and q["calibration_faces"] == 64 and q["source_model"] == "fast"
    printed = json.loads(capsys.readouterr().out)
    assert printed["val"]["accuracy"] == card["metrics"]["val"]["accuracy"]
    assert card["labels"] == OnnxClassifier("fast").classes
    assert (tmp_path / card["mc_dropout_head"]).is_file()
    assert card["metrics"]["val"]["n"] == 56
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # the int8 model reads faces almost exactly as the float one does
    faces = load_dataset(small_fer, "val").images
    p32 = OnnxClassifier("fast", tta=False).predict_proba(list(faces))
    p8 = OnnxClassifier(out, tta=False).predict_proba(list(faces))
    assert (p32.argmax(1) == p8.argmax(1)).mean() >= 0.9
    assert np.abs(p32 - p8).max() < 0.2
    # it can be used wherever a model is taken, MC dropout included
    mc = OnnxClassifier(out, tta=False).predict_mc(list(faces[:4]), passes=5)
    assert mc["mean"].shape == (4, 7)


def test_quantize_refuses_bad_output(small_fer, tmp_path, capsys):
    assert main(["quantize", "--model", "fast", "--calib-data", str(small_fer), "--n", "8",
                 "--out", str(tmp_path / "x.bin")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert not (tmp_path / "x.bin").exists()


def test_quantize_calibration_methods(small_fer, tmp_path):
    from ferkit.errors import FerkitError
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    faces = calibration_faces(small_fer, "fast", n=32)
    val = list(load_dataset(small_fer, "val").images)
    p32 = OnnxClassifier("fast", tta=False).predict_proba(val)
    scales = {}
    for cal in ("minmax", "percentile"):
        out = tmp_path / f"fast_{cal}.onnx"
        card = quantize_model("fast", out, faces, calibration=cal)
        assert card["quantization"]["calibration"] == cal
        p8 = OnnxClassifier(out, tta=False).predict_proba(val)
        assert (p32.argmax(1) == p8.argmax(1)).mean() >= 0.9
        scales[cal] = [onnx.numpy_helper.to_array(t).tolist()
                       for t in onnx.load(str(out)).graph.initializer if t.name.endswith("_scale")]
    assert scales["minmax"] and scales["minmax"] != scales["percentile"]   # ranges set otherwise
    with pytest.raises(FerkitError, match="calibration 'kl'"):
        quantize_model("fast", tmp_path / "x.onnx", faces, calibration="kl")
    assert not (tmp_path / "x.onnx").exists()


def test_percentile_calibration_takes_a_count_off_the_batch_size(small_fer, tmp_path):
    """ORT's histogram calibrators stack all batches' activations: 45 faces (a batch of 32
    and one of 13) used to fail inside ORT; now the 13 are left out and the card says so."""
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    faces = calibration_faces(small_fer, "fast", n=45)
    assert len(faces) == 45
    card = quantize_model("fast", tmp_path / "p.onnx", faces, calibration="percentile")
    assert card["quantization"]["calibration_faces"] == 32
    small = quantize_model("fast", tmp_path / "s.onnx", faces[:20], calibration="percentile")
    assert small["quantization"]["calibration_faces"] == 20
