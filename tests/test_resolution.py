"""Issue 16's training options: full-resolution stems, random-crop training with a centre
crop inside the network, weight averaging (EMA/SWA) and distillation from several teachers."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import interrupt_after

from ferkit.cli import main
from ferkit.models import count_macs, create_model
from ferkit.train import checkpoint
from ferkit.train.augment import random_crop
from ferkit.train.averaging import WeightAverager
from ferkit.train.config import TrainConfig
from ferkit.train.trainer import Trainer


def cfg(data, **kw):
    base = dict(data=str(data), model="resnet_fast", width=8, epochs=2, batch_size=32,
                threads=1, seed=3, val_tta=False)
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_stem_options_change_resolution_and_macs():
    a = create_model("resnet18", 7, 1, width=16, stem_stride=2)
    b = create_model("resnet18", 7, 1, width=16, stem_stride=1)
    c = create_model("resnet18", 7, 1, width=16, stem_stride=1, stage1_stride=2)
    x = torch.zeros(2, 1, 48, 48)
    # the first stage's output: 24 px behind a stride-2 stem, 48 px behind a stride-1 one
    assert a.features[:5](x).shape[-1] == 24
    assert b.features[:5](x).shape[-1] == 48
    assert c.features[:5](x).shape[-1] == 24
    ma, mb, mc = (count_macs(m) for m in (a, b, c))
    assert 3.5 < mb / ma < 4.5          # stage 1 and beyond at 4x the pixels
    assert mc < ma * 1.1                 # only the (narrower) stem at full resolution
    with pytest.raises(Exception, match="stride"):
        create_model("resnet18", 7, 1, stem_stride=4)


def test_centre_crop_inside_the_network_matches_cropping_the_input():
    torch.manual_seed(0)
    m = create_model("resnet_fast", 7, 1, width=8, crop=40).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        full = m(x)
        cropped = m(x[..., 4:44, 4:44])
    torch.testing.assert_close(full, cropped)
    assert count_macs(m, 48) == count_macs(m, 40)


def test_random_crop_takes_windows_of_each_image():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(4 * 48 * 48, dtype=torch.float32).view(4, 1, 48, 48)
    out = random_crop(x, 40, g)
    assert out.shape == (4, 1, 40, 40)
    for i in range(4):
        top, left = divmod(int(out[i, 0, 0, 0] - x[i, 0, 0, 0]), 48)
        torch.testing.assert_close(out[i], x[i, :, top:top + 40, left:left + 40])
    tops = {int(out[i, 0, 0, 0] - x[i, 0, 0, 0]) // 48 for i in range(4)}
    assert len(tops) > 1                  # not the same window for every face


def test_crop_trained_model_exports_with_the_full_input(small_fer, tmp_path):
    from ferkit.data import load_dataset
    from ferkit.zoo.export import export
    out = tmp_path / "crop"
    Trainer(cfg(small_fer, epochs=1, stem_stride=1, crop=40), out, progress=False).fit()
    ck = checkpoint.load(out / "best.pt")
    assert ck["model_config"]["input_size"] == 48
    assert ck["model_config"]["kwargs"]["crop"] == 40
    imgs = load_dataset(small_fer, "val").images[:16]
    card = export(out / "best.pt", tmp_path / "crop.onnx", parity_images=imgs,
                  evaluate_val=False)
    sess = ort.InferenceSession(str(tmp_path / "crop.onnx"))
    assert sess.get_inputs()[0].shape[2:] == [48, 48]
    assert card["parity_max_prob_diff"] < 1e-4


def test_upscaled_input_size_is_the_exported_model_input(small_fer, tmp_path):
    """A run on faces resized to 64 px records 64 in its model config, so the ONNX model and
    its card take 64-px faces (before, the config kept the registry's 48)."""
    from ferkit.zoo.export import export
    out = tmp_path / "up"
    Trainer(cfg(small_fer, epochs=1, input_size=64), out, progress=False).fit()
    ck = checkpoint.load(out / "best.pt")
    assert ck["model_config"]["input_size"] == 64
    card = export(out / "best.pt", tmp_path / "up.onnx", evaluate_val=False)
    assert card["input_size"] == 64
    assert ort.InferenceSession(str(tmp_path / "up.onnx")).get_inputs()[0].shape[2:] == [64, 64]


def test_crop_larger_than_the_input_is_refused(small_fer, tmp_path, capsys):
    rc = main(["train", "--data", str(small_fer), "--crop", "56", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "crop" in capsys.readouterr().err


def test_swa_is_the_mean_of_the_weights_it_saw():
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    av = WeightAverager(m, "swa", epochs=4, start=0.5, decay=0.9)
    seen = []
    for epoch in range(4):
        with torch.no_grad():
            m.weight.add_(torch.randn_like(m.weight))
        av.after_epoch(m, epoch)
        if epoch >= 2:
            seen.append(m.weight.detach().clone())
    torch.testing.assert_close(av.module.weight, torch.stack(seen).mean(0))


def test_ema_run_validates_both_weights_and_resumes_exactly(small_fer, tmp_path, monkeypatch):
    kw = dict(epochs=3, average="ema", average_start=0.5, ema_decay=0.9)
    Trainer(cfg(small_fer, **kw), tmp_path / "full", progress=False).fit()
    hist = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [h["weights"] for h in hist][0] == "raw"          # averaging starts in epoch 2
    assert all(h["weights"] in ("raw", "ema") for h in hist)
    assert all(h["val_acc"] >= h["val_acc_raw"] for h in hist)
    best = checkpoint.load(tmp_path / "full" / "best.pt")
    assert best["weights"] == hist[best["epoch"] - 1]["weights"]

    interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg(small_fer, **kw), tmp_path / "part", progress=False).fit()
    monkeypatch.undo()
    Trainer(cfg(small_fer, **kw), tmp_path / "part", resume=True, progress=False).fit()
    a = checkpoint.load(tmp_path / "full" / "last.pt")
    b = checkpoint.load(tmp_path / "part" / "last.pt")
    for k in a["averager"]:
        torch.testing.assert_close(a["averager"][k], b["averager"][k])
    sessions = json.loads((tmp_path / "part" / "sessions.json").read_text())
    assert [(s["first_epoch"], s["last_epoch"]) for s in sessions] == [(1, 2), (3, 3)]


def test_several_teachers_give_the_mean_of_their_targets(small_fer, tiny_run, tmp_path):
    other = tmp_path / "other"
    Trainer(cfg(small_fer, epochs=1, seed=7), other, progress=False).fit()
    t1, t2 = str(tiny_run / "best.pt"), str(other / "best.pt")

    def targets(distill):
        tr = Trainer(cfg(small_fer, epochs=1, distill=distill, distill_alpha=1.0),
                     tmp_path / "d", progress=False)
        from ferkit.train.loop import images_to_tensor
        from ferkit.train.trainer import load_splits
        train, _ = load_splits(tr.cfg)
        model = tr._model(train.classes)
        return tr._targets(train, images_to_tensor(train.images), model.config)

    one, two, both = targets(t1), targets(t2), targets(f"{t1},{t2}")
    assert not torch.allclose(one, two)
    torch.testing.assert_close(both, (one + two) / 2)
    np.testing.assert_allclose(both.sum(1).numpy(), 1.0, rtol=1e-5)


def test_tencrop_averages_ten_views_of_a_crop_model():
    from ferkit.train.loop import tencrop_logits
    torch.manual_seed(0)
    m = create_model("resnet_fast", 7, 1, width=8, crop=40).eval()
    x = torch.randint(0, 256, (3, 1, 48, 48), dtype=torch.uint8)
    z = tencrop_logits(m, x, (0.5,), (0.25,), 40)
    xn = (x.float() / 255 - 0.5) / 0.25
    views = [xn[..., t:t + 40, s:s + 40] for t, s in ((0, 0), (0, 8), (8, 0), (8, 8), (4, 4))]
    with torch.no_grad():
        want = sum(m(v) + m(v.flip(3)) for v in views) / 10
    torch.testing.assert_close(z, want)


def test_a_teacher_of_another_input_size_sees_faces_at_its_size(small_fer, tmp_path):
    """A 64-px teacher distilling a 48-px student scores the faces resized to 64 px, as the
    reader gives them to a 64-px run (not the student's 48-px tensor)."""
    from ferkit.data import load_dataset
    from ferkit.train.loop import images_to_tensor, predict_logits
    from ferkit.train.trainer import load_splits
    big = tmp_path / "big"
    Trainer(cfg(small_fer, epochs=1, input_size=64), big, progress=False).fit()
    tr = Trainer(cfg(small_fer, epochs=1, distill=str(big / "best.pt"), distill_alpha=1.0,
                     distill_temperature=1.0), tmp_path / "d", progress=False)
    train, _ = load_splits(tr.cfg)
    got = tr._targets(train, images_to_tensor(train.images), None)
    ck = checkpoint.load(big / "best.pt")
    teacher = checkpoint.build_from_checkpoint(ck)
    x64 = images_to_tensor(load_dataset(small_fer, "train", size=64).images)
    want = torch.softmax(predict_logits(teacher, x64, (0.5,), (0.25,), tta=True,
                                        channels_last=False), 1)
    torch.testing.assert_close(got, want)


def test_online_distillation_scores_each_augmented_batch(small_fer, tiny_run, tmp_path):
    """Online, the targets stay the labels and the teacher scores the batch the student sees
    (undoing the student's normalisation, applying its own); a run trains with it."""
    from ferkit.train.distill import Teachers
    from ferkit.train.loop import images_to_tensor, to_input
    from ferkit.train.trainer import load_splits
    t = str(tiny_run / "best.pt")
    tr = Trainer(cfg(small_fer, epochs=1, distill=t, distill_mode="online", distill_alpha=1.0),
                 tmp_path / "d", progress=False)
    train, _ = load_splits(tr.cfg)
    labels = tr._targets(train, images_to_tensor(train.images), None)
    torch.testing.assert_close(labels.argmax(1), torch.from_numpy(train.labels).long())
    teachers = tr.online_teachers
    assert isinstance(teachers, Teachers) and teachers.temperature == 2.0
    u8 = images_to_tensor(train.images[:16])
    x = to_input(u8, (0.4,), (0.3,)).flip(3)                 # another student's input
    got = teachers.online(x, (0.4,), (0.3,))
    teacher = checkpoint.build_from_checkpoint(checkpoint.load(t))
    with torch.no_grad():
        want = torch.softmax(teacher(to_input(u8, (0.5,), (0.25,)).flip(3)) / 2.0, 1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    res = Trainer(cfg(small_fer, epochs=1, distill=t, distill_mode="online"), tmp_path / "r",
                  progress=False).fit()
    assert res.best_epoch == 1 and 0 < res.val_report["accuracy"] <= 1


def test_online_distillation_refuses_a_teacher_of_another_size(small_fer, tmp_path):
    from ferkit.errors import ConfigError
    from ferkit.train.loop import images_to_tensor
    from ferkit.train.trainer import load_splits
    big = tmp_path / "big"
    Trainer(cfg(small_fer, epochs=1, input_size=64), big, progress=False).fit()
    tr = Trainer(cfg(small_fer, epochs=1, distill=str(big / "best.pt"), distill_mode="online"),
                 tmp_path / "d", progress=False)
    train, _ = load_splits(tr.cfg)
    with pytest.raises(ConfigError, match="online distillation needs teachers of the"):
        tr._targets(train, images_to_tensor(train.images), None)
    with pytest.raises(ConfigError, match="distill_mode"):
        TrainConfig.from_dict({"data": str(small_fer), "distill_mode": "live"}).validate()
