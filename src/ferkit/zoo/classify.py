"""ONNX Runtime expression classifier: batched, threads configurable, preprocessing and
temperature from the model card, optional flip test-time augmentation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.data.images import convert_channels, fit_size
from ferkit.errors import ModelError
from ferkit.evaluation.calibration import apply_top_label_map, mc_statistics, softmax
from ferkit.zoo.shipped import ModelRef, resolve

__all__ = ["OnnxClassifier", "softmax"]


class OnnxClassifier:
    """Classify face crops (uint8, any size, gray or BGR) with an exported ferkit model."""

    def __init__(self, model: str | Path | ModelRef | None = None, *, threads: int = 1,
                 tta: bool | None = None, batch_size: int = 64):
        import onnxruntime as ort

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
        self.tta = bool(card.get("tta_flip", False)) if tta is None else bool(tta)
        self.batch_size = batch_size
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.ref.path), so,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types
            raise ModelError(f"{self.ref.path}: ONNX Runtime cannot load it ({exc})") from None
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
        ``tta`` each face and its mirror image go in one ORT call and are averaged."""
        if "embedding" in names and "embedding" not in self.output_names:
            raise ModelError(f"{self.ref.path}: exported without an embedding output; "
                             f"re-export it with this ferkit")
        outs: list[list[np.ndarray]] = [[] for _ in names]
        for i in range(0, len(x), self.batch_size):
            chunk = x[i:i + self.batch_size]
            n = len(chunk)
            if tta:
                chunk = np.concatenate([chunk, chunk[..., ::-1]])
            res = self.session.run(names, {self.input_name: np.ascontiguousarray(chunk)})
            for o, r in zip(outs, res):
                o.append((r[:n] + r[n:]) / 2 if tta else r)
        empty = {"logits": (0, len(self.classes)), "embedding": (0, 1)}
        return [np.concatenate(o) if o else np.zeros(empty[nm], np.float32)
                for o, nm in zip(outs, names)]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Model logits for a preprocessed batch (flip TTA if the classifier uses it)."""
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
        """(probabilities, embeddings) in one ONNX Runtime call per chunk; with flip TTA
        both are averaged over the face and its mirror image."""
        x = faces if preprocessed else self.preprocess(faces)
        z, e = self._run(x, ["logits", "embedding"], self.tta)
        return self.calibrated(z), e

    def predict_mc(self, faces, passes: int = 20, *, seed: int = 0,
                   preprocessed: bool = False) -> dict:
        """Monte-Carlo dropout: one backbone pass, ``passes`` stochastic head passes with
        the model's dropout rate; returns mean probabilities, their std, predictive entropy
        and mutual information (see calibration.mc_statistics). With flip TTA the embedding
        is averaged over the face and its mirror image."""
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
