"""Exported models (float and int8 ONNX) as distillation teachers, online and offline."""
import json
import shutil

import pytest
import torch

from ferkit.data import load_dataset
from ferkit.errors import ConfigError
from ferkit.train.config import TrainConfig
from ferkit.train.distill import OnnxTeacher, Teachers
from ferkit.train.loop import images_to_tensor, to_input
from ferkit.train.trainer import Trainer


def cfg(data, **kw):
    base = dict(data=str(data), model="resnet_fast", width=8, batch_size=32, threads=1,
                epochs=1, bf16=False)
    base.update(kw)
    return TrainConfig.from_dict(base)


def _batch(small_fer, n=16):
    train = load_dataset(small_fer, "train")
    u8 = images_to_tensor(train.images[:n])
    return train, to_input(u8, (0.4,), (0.3,)).flip(3)       # a student's augmented input


def test_onnx_teacher_gives_the_targets_of_its_checkpoint(small_fer, tiny_run, tiny_onnx):
    train, x = _batch(small_fer)
    onnx = Teachers([str(tiny_onnx)], train.classes, temperature=2.0)
    pt = Teachers([str(tiny_run / "best.pt")], train.classes, temperature=2.0)
    assert isinstance(onnx.members[0][1], OnnxTeacher)
    torch.testing.assert_close(onnx.online(x, (0.4,), (0.3,)), pt.online(x, (0.4,), (0.3,)),
                               atol=1e-5, rtol=1e-4)
    xtr = images_to_tensor(train.images)
    torch.testing.assert_close(onnx.offline(train, xtr), pt.offline(train, xtr),
                               atol=1e-5, rtol=1e-4)


def test_int8_teacher_trains_a_run_online(small_fer, tiny_run, tiny_onnx, tmp_path):
    from ferkit.zoo.quantize import quantize_model
    train, x = _batch(small_fer)
    q = tmp_path / "teacher_int8.onnx"
    quantize_model(tiny_onnx, q, train.images[:64], calib_source=str(small_fer))
    got = Teachers([str(q)], train.classes, temperature=1.0).online(x, (0.4,), (0.3,))
    want = Teachers([str(tiny_onnx)], train.classes, temperature=1.0).online(x, (0.4,), (0.3,))
    assert got.shape == want.shape and torch.allclose(got.sum(1), torch.ones(len(x)))
    assert (got - want).abs().max() < 0.15                  # int8, not the float model's copy
    res = Trainer(cfg(small_fer, distill=[str(q), str(tiny_run / "best.pt")],
                      distill_mode="online"), tmp_path / "r", progress=False).fit()
    assert res.best_epoch == 1 and 0 < res.val_report["accuracy"] <= 1


def test_onnx_teacher_errors_name_the_file(small_fer, tiny_onnx, tmp_path):
    train = load_dataset(small_fer, "train")
    other = tmp_path / "other.onnx"
    shutil.copy(tiny_onnx, other)
    card = json.loads(tiny_onnx.with_suffix(".json").read_text())
    card["labels"] = card["labels"][::-1]
    other.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=r"other\.onnx: teacher classes"):
        Teachers([str(other)], train.classes, temperature=2.0)
    with pytest.raises(ConfigError, match=r"missing\.onnx: model file not found"):
        Teachers([str(tmp_path / "missing.onnx")], train.classes, temperature=2.0)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    broken.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=r"broken\.onnx: ONNX Runtime cannot load"):
        OnnxTeacher(broken, 1)


def test_int8_teachers_script_writes_a_teacher_and_refuses_a_bad_spec(small_fer, tiny_run,
                                                                      tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "FERKIT": str(Path(sys.executable).parent / "ferkit"),
           "DATA": str(small_fer)}
    script = str(root / "scripts" / "int8_teachers.sh")
    out = tmp_path / "teachers"
    r = subprocess.run(["bash", script, str(out), f"tiny={tiny_run / 'best.pt'}"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["tiny_int8.head.npz", "tiny_int8.json",
                                                      "tiny_int8.onnx"]
    card = json.loads((out / "tiny_int8.json").read_text())
    assert card["quantization"]["weights"] == "int8"
    train = load_dataset(small_fer, "train")
    t = Teachers([str(out / "tiny_int8.onnx")], train.classes, temperature=1.0)
    assert torch.allclose(t.online(_batch(small_fer)[1], (0.4,), (0.3,)).sum(1),
                          torch.ones(16))
    bad = subprocess.run(["bash", script, str(out), "tiny=missing.pt"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "tiny=missing.pt" in bad.stderr
