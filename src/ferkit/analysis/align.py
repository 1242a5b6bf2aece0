"""Alignment: five landmarks -> a similarity transform onto the FER2013 framing template,
then the model's input size and channels (numpy/OpenCV only)."""
from __future__ import annotations

import cv2
import numpy as np

from ferkit.types import FaceBox, FaceCrop

# Median YuNet landmarks on FER2013 val faces, normalised to the crop and made symmetric
# (scripts/fer_template.py): eyes, nose tip, mouth corners.
TEMPLATE = np.array([[0.3092, 0.3815], [0.6908, 0.3815], [0.5000, 0.5910],
                     [0.3515, 0.7513], [0.6485, 0.7513]], np.float32)
# For boxes without landmarks (Haar, crops): FER2013 faces fill the frame a little wider
# than a detector box; enlarge it by this factor around its centre.
BOX_MARGIN = 1.1


def align_matrix(box: FaceBox, size: int) -> np.ndarray:
    """2x3 matrix mapping the original image onto a size x size FER-framed crop."""
    if box.landmarks:
        m = similarity(np.array(box.landmarks, np.float64), TEMPLATE.astype(np.float64) * size)
        if np.isfinite(m).all():
            return m.astype(np.float32)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    side = max(box.w, box.h) * BOX_MARGIN
    s = size / max(side, 1e-6)
    return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) taking the
    points ``src`` onto ``dst`` (Umeyama 1991), as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var = (s0 ** 2).sum() / len(src)
    if var < 1e-9:
        return np.full((2, 3), np.nan)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / var
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def align_face(image: np.ndarray, box: FaceBox, size: int = 48, channels: int = 1) -> FaceCrop:
    """Crop, rotate upright and resize one face; gray (H, W) or BGR (H, W, 3) uint8."""
    m = align_matrix(box, size)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    src = image
    if scale < 0.5:  # strong downscale: pre-blur to avoid aliasing
        k = int(1 / scale) | 1
        src = cv2.GaussianBlur(image, (k, k), 0)
    crop = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    if channels == 1 and crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return FaceCrop(crop, box)
