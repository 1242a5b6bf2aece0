"""Multi-view test-time augmentation: card views parsed and checked, warps exact where they
can be computed independently, and the ONNX classifier averaging the right views."""
import json
import shutil

import numpy as np
import pytest
from conftest import FER

from ferkit.cli import main
from ferkit.data import load_dataset
from ferkit.errors import ConfigError
from ferkit.zoo import tta
from ferkit.zoo.classify import OnnxClassifier
from ferkit.zoo.shipped import resolve


def test_parse_and_check_views():
    v = tta.parse_views("scale=1.1; shift_x=0.04,rotate=-8;")
    assert v == [{"scale": 1.1, "shift_x": 0.0, "shift_y": 0.0, "rotate": 0.0},
                 {"scale": 1.0, "shift_x": 0.04, "shift_y": 0.0, "rotate": -8.0}]
    assert tta.parse_views("") == []
    for bad, msg in (("zoom=1.1", "unknown key"), ("scale", "not key=number"),
                     ("scale=big", "not key=number"), ("scale=3", "outside")):
        with pytest.raises(ConfigError, match=msg):
            tta.parse_views(bad)
    with pytest.raises(ConfigError, match="a number is expected"):
        tta.check_views([{"scale": True}])
    with pytest.raises(ConfigError, match="a list of views"):
        tta.check_views({"scale": 1.1})
    assert tta.describe(True, v[:1]) == "flip x2 (scale 1.1)"
    assert tta.describe(False, []) == "none" and tta.describe(True, []) == "flip"


def test_whole_pixel_shift_and_identity_are_exact(rng):
    x = rng.random((3, 1, 48, 48), dtype=np.float32)
    np.testing.assert_allclose(tta.warp(x, tta.check_views([{"scale": 1.0}])[0]), x, atol=1e-6)
    shifted = tta.warp(x, tta.check_views([{"shift_x": 2 / 48}])[0])
    want = np.concatenate([np.repeat(x[..., :1], 2, axis=-1), x[..., :-2]], axis=-1)
    np.testing.assert_allclose(shifted, want, atol=1e-5)     # borders replicated
    stacked, k = tta.expand(x, True, tta.check_views([{"scale": 1.1}]))
    assert k == 4 and stacked.shape == (12, 1, 48, 48)
    np.testing.assert_array_equal(stacked[6:9], x[..., ::-1])
    r = np.arange(4 * 3 * 2, dtype=np.float32).reshape(12, 2)
    np.testing.assert_allclose(tta.average(r, 4), r.reshape(4, 3, 2).mean(0))


def _model_with_views(tmp_path, views):
    ref = resolve("fast")
    for ext in (".onnx", ".head.npz"):
        shutil.copy(ref.path.with_suffix(ext), tmp_path / f"m{ext}")
    card = dict(ref.card, tta_views=views)
    (tmp_path / "m.json").write_text(json.dumps(card))
    return tmp_path / "m.onnx"


def test_classifier_averages_the_card_views_on_real_faces(tmp_path):
    faces = load_dataset(FER, "val").images[:24]
    model = _model_with_views(tmp_path, [{"shift_x": 2 / 48}])
    clf = OnnxClassifier(model, threads=1, batch_size=10)   # chunks of 10 views x 4
    assert clf.tta and clf.tta_name == "flip x2 (shift_x 0.0417)"
    one = OnnxClassifier(model, threads=1, tta="none")
    assert not one.tta and one.tta_name == "none"
    x = one.preprocess(list(faces))
    sh = np.concatenate([np.repeat(x[..., :1], 2, axis=-1), x[..., :-2]], axis=-1)
    want = np.mean([one.logits(v) for v in (x, sh, x[..., ::-1], sh[..., ::-1])], axis=0)
    np.testing.assert_allclose(clf.logits(x), want, atol=2e-4)
    flip = OnnxClassifier(model, threads=1, tta="flip")
    assert flip.tta_name == "flip"
    np.testing.assert_allclose(flip.logits(x), (one.logits(x) + one.logits(x[..., ::-1])) / 2,
                               atol=2e-4)
    p, e = clf.predict_with_embeddings(list(faces))
    assert p.shape == (24, 7) and len(e) == 24


def test_bad_card_views_name_the_model(tmp_path):
    model = _model_with_views(tmp_path, [{"zoom": 2}])
    with pytest.raises(ConfigError, match="m.onnx: tta_views.*unknown key"):
        OnnxClassifier(model)


def test_cli_evaluate_with_each_tta_mode(tmp_path):
    model = _model_with_views(tmp_path, [{"scale": 1.1}])
    acc = {}
    for mode in ("on", "flip", "none"):
        out = tmp_path / f"{mode}.json"
        assert main(["evaluate", "--data", str(FER), "--model", str(model), "--tta", mode,
                     "--threads", "1", "--json", str(out)]) == 0
        rep = json.loads(out.read_text())
        acc[mode] = rep["accuracy"]
        assert rep["n"] == 3589 and rep["tta"] == {"on": "flip x2 (scale 1.1)", "flip": "flip",
                                                   "none": "none"}[mode]
    assert acc["on"] != acc["flip"] != acc["none"]   # three different computations


def test_cli_export_writes_views_into_the_card(tiny_run, tmp_path, capsys):
    out = tmp_path / "v.onnx"
    assert main(["export", str(tiny_run / "best.pt"), "--out", str(out), "--no-val",
                 "--tta-views", "scale=1.1;rotate=8"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert [v["scale"] for v in card["tta_views"]] == [1.1, 1.0]
    assert OnnxClassifier(out).tta_name == "flip x3 (scale 1.1; rotate 8)"
    assert main(["export", str(tiny_run / "best.pt"), "--out", str(tmp_path / "w.onnx"),
                 "--tta-views", "scale=9"]) == 2
    assert "outside" in capsys.readouterr().err
