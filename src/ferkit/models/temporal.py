"""The trainable form of the video sequence head (see analysis/temporal.py for inference)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TemporalNet(nn.Module):
    def __init__(self, dim: int, num_classes: int, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:      # (B, T, D) standardised
        out, _ = self.gru(seq)
        return self.fc(self.drop(out[:, -1]))

    def to_arrays(self) -> dict[str, np.ndarray]:
        g = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        return {"w_ih": g(self.gru.weight_ih_l0), "w_hh": g(self.gru.weight_hh_l0),
                "b_ih": g(self.gru.bias_ih_l0), "b_hh": g(self.gru.bias_hh_l0),
                "fc_w": g(self.fc.weight), "fc_b": g(self.fc.bias)}
