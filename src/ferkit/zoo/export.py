"""`ferkit export`: checkpoint -> ONNX (logits output, dynamic batch), a parity check
against PyTorch, and the model card JSON beside the ONNX file."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
from pathlib import Path

import numpy as np

from ferkit.errors import ModelError
from ferkit.io import atomic_path, write_json

log = logging.getLogger(__name__)
PARITY_LIMIT = 1e-4


def export(ckpt_path: str | Path, out: str | Path, *, name: str | None = None,
           parity_images: np.ndarray | None = None, opset: int = 17,
           slim_checkpoint: str | Path | None = None, evaluate_val: bool = True,
           tta_views: list[dict] | None = None, half_weights: bool = False) -> dict:
    """Write ``out`` (.onnx) and ``out.json`` (model card); return the card. ``tta_views``
    (see ferkit.zoo.tta) are extra test-time views the card asks the classifier to average
    over, with the mirror images, whenever TTA is on. ``half_weights`` stores the weights as
    float16 (ferkit.zoo.half_weights: half the file, float32 arithmetic)."""
    import torch

    from ferkit.train import checkpoint
    from ferkit.zoo.half_weights import half_state_dict, round_module
    from ferkit.zoo.tta import check_views

    views = check_views(tta_views)
    ckpt_path, out = Path(ckpt_path), Path(out)
    if out.suffix.lower() != ".onnx":
        raise ModelError(f"{out}: the output must end in .onnx")
    ck = checkpoint.load(ckpt_path)
    model = checkpoint.build_from_checkpoint(ck)
    if half_weights:
        round_module(model)
    mc = ck["model_config"]
    size, chans = mc["input_size"], mc["in_chans"]
    dummy = torch.zeros(1, chans, size, size)
    _write_onnx(model, dummy, out, opset, half_weights)
    head = out.with_suffix(".head.npz")
    _write_head(model, head)
    diff = _parity(model, out, head, parity_images, mc)
    card = _card(ck, ckpt_path, out, name, diff, opset)
    if views:
        card["tta_views"] = views
    if half_weights:
        card["weights_stored"] = "float16"
    if slim_checkpoint:
        slim = {k: ck[k] for k in ("model", "model_config", "classes", "config") if k in ck}
        if half_weights:
            slim["model"] = half_state_dict(model.state_dict())
        slim["val_report"] = ck.get("val_report")
        checkpoint.save(slim_checkpoint, slim)
        card["checkpoint"] = Path(slim_checkpoint).name
    write_json(out.with_suffix(".json"), card)
    if evaluate_val and card["training_data"].get("val_source"):
        card = _add_val_metrics(out, card)
    return card


def _parity(model, out: Path, head: Path, images: np.ndarray | None, mc: dict) -> float:
    """Largest probability difference between PyTorch and the written ONNX file, on real
    faces when given, else on seeded noise images; over PARITY_LIMIT removes both files."""
    import onnxruntime as ort
    import torch

    from ferkit.train.loop import images_to_tensor, to_input

    if images is None:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (64, mc["input_size"], mc["input_size"]), dtype=np.uint8)
    x = to_input(images_to_tensor(images[:256]), mc["mean"], mc["std"])
    with torch.no_grad():
        p_torch = torch.softmax(model(x), 1).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z = sess.run(["logits"], {"input": x.numpy()})[0]
    p_onnx = np.exp(z - z.max(1, keepdims=True))
    p_onnx /= p_onnx.sum(1, keepdims=True)
    diff = float(np.abs(p_torch - p_onnx).max())
    if not diff < PARITY_LIMIT:
        out.unlink(missing_ok=True)
        head.unlink(missing_ok=True)
        raise ModelError(f"{out}: ONNX and PyTorch disagree (max probability difference "
                         f"{diff:.2e} >= {PARITY_LIMIT}); export refused")
    return diff


def _write_onnx(model, dummy, out: Path, opset: int, half_weights: bool) -> None:
    """The ONNX file, atomically; with ``half_weights`` BatchNormalization stays apart from
    the Convs (ORT fuses them at load), so the float16-stored weights are the rounded ones."""
    import torch

    from ferkit.zoo.half_weights import store_half
    mode = torch.onnx.TrainingMode
    with atomic_path(out) as tmp:
        torch.onnx.export(_with_embedding(model), dummy, str(tmp), input_names=["input"],
                          output_names=["logits", "embedding"], opset_version=opset,
                          dynamo=False, do_constant_folding=not half_weights,
                          training=mode.PRESERVE if half_weights else mode.EVAL,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"},
                                        "embedding": {0: "batch"}})
    if half_weights:
        store_half(out)


def _write_head(model, head: Path) -> None:
    """The classifier head, for Monte-Carlo dropout in numpy: one backbone pass through
    ONNX, then T cheap head passes."""
    extra = {}
    if getattr(model, "label_vectors", None) is not None:
        extra = {"label_vectors": model.label_vectors.numpy(),
                 "semantic_scale": np.float32(model.semantic_scale)}
    with atomic_path(head) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, weight=model.head.weight.detach().numpy(),
                 bias=model.head.bias.detach().numpy(),
                 dropout=np.float32(model.dropout.p), **extra)


def _with_embedding(model):
    """Export wrapper returning (logits, pooled embedding before dropout)."""
    import torch

    class WithEmbedding(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            e = self.m.embed(x)
            return self.m.project(self.m.head(e)), e
    return WithEmbedding(model).eval()


def _card(ck: dict, ckpt_path: Path, out: Path, name, diff: float, opset: int) -> dict:
    mc, cfg = ck["model_config"], ck.get("config", {})
    summary_path = ckpt_path.parent / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    val_src = cfg.get("val_data") or cfg.get("data")
    return {
        "name": name or out.stem,
        "format": "ferkit-model-card/1",
        "labels": ck["classes"],
        "input_size": mc["input_size"],
        "channels": mc["in_chans"],
        "mean": list(mc["mean"]),
        "std": list(mc["std"]),
        "output": "logits",
        "outputs": ["logits", "embedding"],
        "mc_dropout_head": out.with_suffix(".head.npz").name,
        "temperature": 1.0,
        "tta_flip": bool(cfg.get("val_tta", False)),
        "architecture": {"name": mc["name"], **mc["kwargs"]},
        "training_data": {"source": cfg.get("data"), "val_source": val_src,
                          "soft_labels": cfg.get("soft_labels", False),
                          "counts": summary.get("train_counts")},
        "recipe": cfg,
        "training": _training(ck, ckpt_path, summary),
        "metrics": {"val_torch": _brief(ck.get("val_report"))},
        "privacy": ck.get("privacy"),
        "parity_max_prob_diff": diff,
        "opset": opset,
        "onnx_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "source_commit": _git_commit(),
        "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _training(ck: dict, ckpt_path: Path, summary: dict) -> dict:
    """Best epoch, wall time and hardware; a run fine-tuned from another run's checkpoint
    lists every stage and sums their training time."""
    from ferkit.train.lineage import run_stages, stage_summary
    out = {"best_epoch": summary.get("best_epoch", ck.get("epoch")),
           "train_seconds": summary.get("train_seconds"), "hardware": summary.get("hardware")}
    stages = run_stages(ckpt_path.parent)
    if len(stages) > 1:
        out["stages"] = stage_summary(stages)
        secs = [s["train_seconds"] for s in out["stages"]]
        out["train_seconds"] = sum(secs) if None not in secs else None
    return out


def _brief(rep: dict | None) -> dict | None:
    if not rep:
        return None
    keys = ("n", "accuracy", "macro_f1", "balanced_accuracy", "per_class_accuracy_spread",
            "ece")
    return {k: rep[k] for k in keys if k in rep}


def _add_val_metrics(out: Path, card: dict) -> dict:
    """Score the exported ONNX file itself on the val split named in the recipe."""
    from ferkit.evaluation.evaluate import evaluate
    src = card["training_data"]["val_source"]
    if not Path(src).exists():
        log.warning("val data %s not found; model card has no ONNX val metrics", src)
        return card
    rep = evaluate(src, out, split="val")
    card["metrics"]["val"] = _brief(rep)
    write_json(out.with_suffix(".json"), card)
    return card


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
        return res.stdout.strip() if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
