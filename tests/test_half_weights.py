"""Float models stored with float16 weights (ferkit.zoo.half_weights, export(half_weights=True))."""
import numpy as np
import onnx
import torch

from ferkit.data import load_dataset
from ferkit.train import checkpoint
from ferkit.train.loop import images_to_tensor, to_input
from ferkit.zoo.classify import OnnxClassifier
from ferkit.zoo.export import export
from ferkit.zoo.half_weights import store_half


def test_export_with_half_weights(tiny_run, tiny_onnx, small_fer, tmp_path):
    faces = load_dataset(small_fer, "val").images
    out = tmp_path / "half.onnx"
    card = export(tiny_run / "best.pt", out, parity_images=faces,
                  slim_checkpoint=tmp_path / "half.pt", evaluate_val=False, half_weights=True)
    assert card["weights_stored"] == "float16" and card["parity_max_prob_diff"] < 1e-4
    g = onnx.load(str(out)).graph
    halves = [t for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert halves and sum(n.op_type == "Cast" for n in g.node) == len(halves)
    assert out.stat().st_size < 0.8 * tiny_onnx.stat().st_size
    # the same labels as the float32 export, on real faces
    p32 = OnnxClassifier(tiny_onnx, tta=False).predict_proba(list(faces))
    p16 = OnnxClassifier(out, tta=False).predict_proba(list(faces))
    assert (p32.argmax(1) == p16.argmax(1)).mean() >= 0.95
    assert np.abs(p32 - p16).max() < 0.02
    # the checkpoint beside it holds the stored weights, as float16, and loads into float32
    ck = checkpoint.load(tmp_path / "half.pt")
    assert {v.dtype for v in ck["model"].values() if v.is_floating_point()} == {torch.float16}
    net = checkpoint.build_from_checkpoint(ck)
    mc = ck["model_config"]
    with torch.no_grad():
        pt = torch.softmax(net(to_input(images_to_tensor(faces), mc["mean"], mc["std"])), 1)
    assert np.abs(pt.numpy() - p16).max() < 1e-4


def test_store_half_converts_large_float_initializers_once(tiny_onnx, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_onnx.read_bytes())
    n = store_half(path)
    assert n > 0
    assert store_half(path) == 0                 # nothing float32 and large is left
    onnx.checker.check_model(onnx.load(str(path)))


def test_cli_export_half_weights(tiny_run, tmp_path, capsys):
    import json

    from ferkit.cli import main
    out = tmp_path / "h.onnx"
    assert main(["export", str(tiny_run / "best.pt"), "--out", str(out), "--half-weights",
                 "--no-val"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["weights_stored"] == "float16"
    assert "parity" in capsys.readouterr().out
