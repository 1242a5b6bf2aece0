"""Test-time augmentation views for the ONNX classifier.

A model's TTA is the face and its mirror image, plus optionally the same face zoomed, shifted
or slightly rotated (a model card's ``tta_views``), each with its mirror image too; the
logits are averaged over all of them. A view is a dict of ``scale`` (>1 zooms in), ``shift_x``
and ``shift_y`` (fractions of the crop size) and ``rotate`` (degrees), written on the command
line as ``scale=1.1;scale=0.9`` or ``shift_x=0.04,scale=1.05;rotate=8``.
"""
from __future__ import annotations

import numpy as np

from ferkit.errors import ConfigError

KEYS = {"scale": 1.0, "shift_x": 0.0, "shift_y": 0.0, "rotate": 0.0}
LIMITS = {"scale": (0.5, 2.0), "shift_x": (-0.25, 0.25), "shift_y": (-0.25, 0.25),
          "rotate": (-45.0, 45.0)}


def check_views(views, where: str = "tta_views") -> list[dict]:
    """Validated views (known keys, numbers in range) with every key filled in."""
    if views is None:
        return []
    if not isinstance(views, list):
        raise ConfigError(f"{where}: a list of views is expected, not {type(views).__name__}")
    out = []
    for i, v in enumerate(views):
        if not isinstance(v, dict) or not v:
            raise ConfigError(f"{where}[{i}]: a view is a non-empty mapping such as "
                              f"{{'scale': 1.1}}, not {v!r}")
        bad = sorted(set(v) - set(KEYS))
        if bad:
            raise ConfigError(f"{where}[{i}]: unknown key(s) {bad}; use {sorted(KEYS)}")
        full = dict(KEYS)
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ConfigError(f"{where}[{i}].{k}: a number is expected, not {x!r}")
            lo, hi = LIMITS[k]
            if not lo <= float(x) <= hi:
                raise ConfigError(f"{where}[{i}].{k}={x} is outside [{lo}, {hi}]")
            full[k] = float(x)
        out.append(full)
    return out


def parse_views(text: str) -> list[dict]:
    """``"scale=1.1;scale=0.9"`` -> [{'scale': 1.1, ...}, {'scale': 0.9, ...}]."""
    views = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        view = {}
        for item in filter(None, (t.strip() for t in part.split(","))):
            key, sep, val = item.partition("=")
            try:
                view[key.strip()] = float(val)
            except ValueError:
                raise ConfigError(f"TTA view {part!r}: {item!r} is not key=number") from None
            if not sep:
                raise ConfigError(f"TTA view {part!r}: {item!r} is not key=number")
        views.append(view)
    return check_views(views, "TTA views")


def describe(flip: bool, views: list[dict]) -> str:
    """A short human label: 'none', 'flip', 'flip x3 (scale 1.1; scale 0.9)'."""
    if not flip and not views:
        return "none"
    parts = ["; ".join(f"{k} {v[k]:.3g}" for k in KEYS if v[k] != KEYS[k]) for v in views]
    base = "flip" if flip else "views"
    return base if not views else f"{base} x{len(views) + 1} ({'; '.join(parts)})"


def _matrix(view: dict, size: int) -> np.ndarray:
    import cv2
    c = (size - 1) / 2.0
    m = cv2.getRotationMatrix2D((c, c), view["rotate"], view["scale"])
    m[:, 2] += (view["shift_x"] * size, view["shift_y"] * size)
    return m


def warp(x: np.ndarray, view: dict) -> np.ndarray:
    """One view of a preprocessed batch (N, C, S, S) float32: bilinear, borders replicated."""
    import cv2
    n, c, h, w = x.shape
    m = _matrix(view, w)
    planes = x.reshape(n * c, h, w)
    out = np.empty_like(planes)
    for i, p in enumerate(planes):
        out[i] = cv2.warpAffine(p, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(n, c, h, w)


def expand(x: np.ndarray, flip: bool, views: list[dict]) -> tuple[np.ndarray, int]:
    """(all views of the batch stacked along axis 0, number of views)."""
    parts = [x] + [warp(x, v) for v in views]
    if flip:
        parts += [p[..., ::-1] for p in parts]
    return np.concatenate(parts), len(parts)


def average(r: np.ndarray, n_views: int) -> np.ndarray:
    """Mean over views of an output computed on ``expand``'s stacked batch."""
    return r.reshape(n_views, len(r) // n_views, *r.shape[1:]).mean(0)
