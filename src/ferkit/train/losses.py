"""Losses for ambiguous labels, all on soft targets (B, K):

- ``ce``: cross-entropy (with label smoothing); on FER+ vote distributions this is the
  FER+ paper's "probabilistic label drawing"-free PLD / cross-entropy scheme.
- ``kl``: label-distribution learning, KL(target || prediction). Its gradient equals soft
  cross-entropy's; the logged loss is the divergence itself (0 for a perfect fit).
- ``sample``: each step draws one hard label per face from its vote distribution.
- ``semantic``: the network predicts a vector; loss 1 - cos(prediction, label vector)
  (the head's logits are scale * cos, see models/common.py); prediction = nearest label.
- ``semantic_smooth``: cross-entropy towards targets smoothed over semantically close labels.
Plus the flip attention-consistency loss on class activation maps and the hard-sample
reweighter (self-cure style)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def neighbour_matrix(vectors: np.ndarray, alpha: float, tau: float) -> torch.Tensor:
    """(K, K) row-stochastic: keep 1-alpha on the label, spread alpha over the other labels
    by softmax(cosine similarity / tau)."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    s = torch.tensor(v @ v.T, dtype=torch.float32)
    s.fill_diagonal_(float("-inf"))
    nb = torch.softmax(s / tau, 1)
    return (1 - alpha) * torch.eye(len(v)) + alpha * nb


def prepare_targets(t: torch.Tensor, loss: str, g: torch.Generator,
                    neighbours: torch.Tensor | None = None) -> torch.Tensor:
    if loss == "sample":
        draw = torch.multinomial(t.clamp_min(0) + 1e-12, 1, generator=g).squeeze(1)
        return F.one_hot(draw, t.shape[1]).float()
    if loss == "semantic_smooth":
        return t @ neighbours
    return t


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, loss: str, *,
                    smoothing: float = 0.0, scale: float = 10.0) -> torch.Tensor:
    """Loss of each example (B,)."""
    logits = logits.float()
    if loss == "semantic":
        return (target * (1 - logits / scale)).sum(1)
    logp = F.log_softmax(logits, 1)
    if loss == "kl":
        return (target * (torch.log(target.clamp_min(1e-8)) - logp)).sum(1)
    if smoothing and loss in ("ce", "sample"):
        target = target * (1 - smoothing) + smoothing / logits.shape[1]
    return -(target * logp).sum(1)


def weighted_mean(per: torch.Tensor, target: torch.Tensor, class_weight=None,
                  sample_weight=None) -> torch.Tensor:
    w = torch.ones_like(per)
    if class_weight is not None:
        w = w * (target @ class_weight.to(per.device))
    if sample_weight is not None:
        w = w * sample_weight.to(per.device)
    return (per * w).sum() / w.sum().clamp_min(1e-8)


def class_activation_maps(fmap: torch.Tensor, class_weight: torch.Tensor) -> torch.Tensor:
    """CAMs of every class (B, K, H, W) from the last feature map and the linear map from
    pooled features to class scores."""
    return torch.einsum("bchw,kc->bkhw", fmap.float(), class_weight.float())


def flip_consistency(cams: torch.Tensor, cams_of_flipped: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the CAMs of an image and the mirrored CAMs of its
    horizontal flip (erasing-attention-consistency style)."""
    return F.mse_loss(cams, cams_of_flipped.flip(3))


class HardSampleReweighter:
    """Tracks each training face's loss (EMA over epochs); after ``warmup`` epochs the
    ``share`` of faces with the highest loss get weight ``weight``. Faces that stay hard
    are most often mislabelled or ambiguous (Self-Cure Network, Wang et al. 2020)."""

    def __init__(self, n: int, share: float, weight: float, warmup: int, momentum: float = 0.6):
        self.ema = np.full(n, np.nan, np.float32)
        self.share, self.weight, self.warmup, self.momentum = share, weight, warmup, momentum
        self.low = np.zeros(n, bool)
        self.epochs_seen = 0

    def update(self, idx: np.ndarray, losses: np.ndarray) -> None:
        old = self.ema[idx]
        self.ema[idx] = np.where(np.isnan(old), losses, self.momentum * old + (1 - self.momentum) * losses)

    def weights(self, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.where(self.low[idx], self.weight, 1.0).astype(np.float32))

    def end_epoch(self) -> int:
        """Choose the faces down-weighted next epoch; returns how many."""
        self.epochs_seen += 1
        seen = ~np.isnan(self.ema)
        if self.epochs_seen < self.warmup or not seen.any():
            return 0
        thr = np.quantile(self.ema[seen], 1 - self.share)
        self.low = seen & (self.ema >= thr)
        return int(self.low.sum())

    def state(self) -> dict:
        return {"ema": self.ema, "low": self.low, "epochs_seen": self.epochs_seen}

    def load(self, st: dict) -> None:
        self.ema, self.low, self.epochs_seen = st["ema"], st["low"], st["epochs_seen"]
