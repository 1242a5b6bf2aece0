"""ONNX Runtime expression classifier: batched, threads configurable, preprocessing and
temperature from the model card, test-time augmentation (flip, and the card's extra views)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.data.images import convert_channels, fit_size
from ferkit.errors import ModelError
from ferkit.evaluation.calibration import apply_top_label_map, mc_statistics, softmax
from ferkit.zoo import tta as tta_views
from ferkit.zoo.shipped import ModelRef, resolve

__all__ = ["OnnxClassifier", "softmax"]


class OnnxClassifier:
    """Classify face crops (uint8, any size, gray or BGR) with an exported ferkit model.

    ``tta``: None as the card says; True or "on" the model's TTA (mirror image plus the
    card's ``tta_views``); "flip" the mirror image only; False or "none" one pass."""

    def __init__(self, model: str | Path | ModelRef | None = None, *, threads: int = 1,
                 tta: bool | str | None = None, batch_size: int = 64):
        self.ref = model if isinstance(model, ModelRef) else resolve(model)
        card = self.ref.card
        self.classes = list(card["labels"])
        self.size = int(card["input_size"])
        self.channels = int(card["channels"])
        self.mean = np.array(card["mean"], np.float32).reshape(1, -1, 1, 1)
        self.std = np.array(card["std"], np.float32).reshape(1, -1, 1, 1)
        self.temperature = float(card.get("temperature", 1.0))
        tl = (card.get("calibration") or {}).get("top_label_map")
        self.top_label_map = (tl["x"], tl["y"]) if tl else None
        self.tta, self.views = _tta_mode(card, tta, self.ref.path)
        self.batch_size = batch_size
        self.session = open_session(self.ref.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._head = None

    def preprocess(self, faces) -> np.ndarray:
        """List/array of uint8 crops -> normalised float32 (N, C, S, S)."""
        arr = np.stack([fit_size(convert_channels(f, self.channels), self.size)
                        for f in faces])
        if arr.ndim == 3:
            arr = arr[:, None]
        else:
            arr = arr.transpose(0, 3, 1, 2)
        return (arr.astype(np.float32) / 255.0 - self.mean) / self.std

    def _run(self, x: np.ndarray, names: list[str], tta: bool) -> list[np.ndarray]:
        """The named outputs for a preprocessed batch, in chunks of ``batch_size``; with
        ``tta`` all views of each face go in one ORT call and are averaged."""
        if "embedding" in names and "embedding" not in self.output_names:
            raise ModelError(f"{self.ref.path}: exported without an embedding output; "
                             f"re-export it with this ferkit")
        outs: list[list[np.ndarray]] = [[] for _ in names]
        for i in range(0, len(x), self.batch_size):
            chunk = x[i:i + self.batch_size]
            k = 1
            if tta:
                chunk, k = tta_views.expand(chunk, True, self.views)
            res = self.session.run(names, {self.input_name: np.ascontiguousarray(chunk)})
            for o, r in zip(outs, res):
                o.append(tta_views.average(r, k) if k > 1 else r)
        empty = {"logits": (0, len(self.classes)), "embedding": (0, 1)}
        return [np.concatenate(o) if o else np.zeros(empty[nm], np.float32)
                for o, nm in zip(outs, names)]

    @property
    def tta_name(self) -> str:
        """What the classifier's TTA is, in words ('none', 'flip', 'flip x3 (...)')."""
        return tta_views.describe(self.tta, self.views if self.tta else [])

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Model logits for a preprocessed batch (with the classifier's TTA)."""
        return self._run(x, ["logits"], self.tta)[0]

    def calibrated(self, z: np.ndarray) -> np.ndarray:
        """Probabilities from logits with the card's calibration: its temperature, then its
        top-label confidence map where `ferkit calibrate` fitted one."""
        p = softmax(z / self.temperature)
        if self.top_label_map is not None:
            p = apply_top_label_map(p, *self.top_label_map)
        return p

    def predict_proba(self, faces, *, preprocessed: bool = False) -> np.ndarray:
        x = faces if preprocessed else self.preprocess(faces)
        return self.calibrated(self.logits(x))

    def embeddings(self, x: np.ndarray) -> np.ndarray:
        """Pooled backbone features (before dropout) of a preprocessed batch."""
        return self._run(x, ["embedding"], False)[0]

    def predict_with_embeddings(self, faces, *, preprocessed: bool = False):
        """(probabilities, embeddings) in one ONNX Runtime call per chunk; with TTA both are
        averaged over the views of the face."""
        x = faces if preprocessed else self.preprocess(faces)
        z, e = self._run(x, ["logits", "embedding"], self.tta)
        return self.calibrated(z), e

    def predict_mc(self, faces, passes: int = 20, *, seed: int = 0,
                   preprocessed: bool = False) -> dict:
        """Monte-Carlo dropout: one backbone pass, ``passes`` stochastic head passes with
        the model's dropout rate; returns mean probabilities, their std, predictive entropy
        and mutual information (see calibration.mc_statistics). With TTA the embedding is
        averaged over the views of the face."""
        head = self._load_head()
        x = faces if preprocessed else self.preprocess(faces)
        emb = self._run(x, ["embedding"], self.tta)[0]
        keep = 1.0 - float(head["dropout"])
        rng = np.random.default_rng(seed)
        samples = []
        v = head.get("label_vectors")              # semantic head: scale * cosine to these
        if v is not None:
            v = v / np.linalg.norm(v, axis=1, keepdims=True)
        for _ in range(passes):
            mask = (rng.random(emb.shape) < keep).astype(np.float32) / max(keep, 1e-6)
            z = (emb * mask) @ head["weight"].T + head["bias"]
            if v is not None:
                z = float(head["semantic_scale"]) * (z / np.maximum(
                    np.linalg.norm(z, axis=1, keepdims=True), 1e-12)) @ v.T
            samples.append(softmax(z / self.temperature))
        return mc_statistics(np.stack(samples))

    def _load_head(self) -> dict:
        if self._head is None:
            path = self.ref.path.with_suffix(".head.npz")   # travels with the .onnx name
            if not path.is_file():
                raise ModelError(f"{self.ref.path}: no MC-dropout head file beside it; "
                                 f"re-export the model with this ferkit")
            with np.load(path) as z:
                self._head = {k: z[k] for k in z.files}
        return self._head


def open_session(path, threads: int, *, spin: bool = True):
    """An ONNX Runtime CPU session on ``threads`` intra-op threads; ``spin=False`` keeps
    its threads from spinning between calls (for a model run between other work, such as a
    distillation teacher between the student's steps)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({exc})") from None


def _tta_mode(card: dict, tta, path) -> tuple[bool, list[dict]]:
    """(TTA on, extra views) from the card and the caller's ``tta`` choice."""
    views = tta_views.check_views(card.get("tta_views"), f"{path}: tta_views")
    if tta is None:
        tta = bool(card.get("tta_flip", False))
    if tta in (True, "on"):
        return True, views
    if tta == "flip":
        return True, []
    if tta in (False, "none", "off"):
        return False, []
    raise ModelError(f"tta={tta!r}: use None, True/'on', 'flip' or False/'none'")
