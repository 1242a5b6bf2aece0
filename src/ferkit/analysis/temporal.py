"""Sequence model for video, numpy-only at inference: a small GRU over the per-frame
embeddings of one track's aligned faces (CNN-RNN), classifying the last ``window`` frames.

The weights (NAME.temporal.npz) are trained by ferkit.train.temporal on top of one exported
classifier; they only fit that classifier's embedding, which the file records and the
Analyzer checks."""
from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from ferkit.errors import ModelError


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class TemporalHead:
    """GRU (PyTorch gate order r, z, n) + linear classifier, on standardised embeddings."""

    KEYS = ("w_ih", "w_hh", "b_ih", "b_hh", "fc_w", "fc_b", "mu", "sigma", "window",
            "embedding_dim", "model_sha256")

    def __init__(self, path: str | Path):
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: temporal head not found")
        try:
            with np.load(p) as z:
                self.w = {k: z[k] for k in z.files}
        except Exception as exc:  # numpy raises several types for a bad file
            raise ModelError(f"{p}: not a ferkit temporal head ({exc.__class__.__name__})") from None
        missing = [k for k in self.KEYS if k not in self.w]
        if missing:
            raise ModelError(f"{p}: not a ferkit temporal head (missing {', '.join(missing)})")
        self.path = p
        self.window = int(self.w["window"])
        self.hidden = self.w["w_hh"].shape[1]
        self.model_sha256 = str(self.w["model_sha256"])
        self._tracks: dict[int, deque] = {}

    def check_model(self, onnx_path: Path, embedding_dim: int) -> None:
        import hashlib
        sha = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()
        if sha != self.model_sha256 or embedding_dim != int(self.w["embedding_dim"]):
            raise ModelError(f"{self.path}: trained on another classifier's embeddings; train "
                             f"one for {onnx_path} with `ferkit temporal train`")

    def logits(self, seq: np.ndarray) -> np.ndarray:
        """(B, T, D) embeddings -> (B, K) logits of the last step."""
        w = self.w
        x = (seq - w["mu"]) / w["sigma"]
        h = np.zeros((x.shape[0], self.hidden), np.float32)
        H = self.hidden
        for t in range(x.shape[1]):
            gi = x[:, t] @ w["w_ih"].T + w["b_ih"]
            gh = h @ w["w_hh"].T + w["b_hh"]
            r = _sigmoid(gi[:, :H] + gh[:, :H])
            z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1 - z) * n + z * h
        return h @ w["fc_w"].T + w["fc_b"]

    def update(self, track_id: int, embedding: np.ndarray) -> np.ndarray:
        """Add a track's newest embedding; probabilities over its last ``window`` frames."""
        q = self._tracks.setdefault(track_id, deque(maxlen=self.window))
        q.append(np.asarray(embedding, np.float32))
        z = self.logits(np.stack(q)[None])[0]
        e = np.exp(z - z.max())
        return e / e.sum()

    def forget(self, keep: set[int]) -> None:
        """Drop the windows of tracks that ended."""
        for tid in list(self._tracks):
            if tid not in keep:
                del self._tracks[tid]
