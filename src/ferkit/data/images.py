"""Decoding and resizing single images into model-ready uint8 arrays (numpy/OpenCV)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ferkit.errors import DataError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"}


def to_uint8(img: np.ndarray) -> np.ndarray:
    """16-bit or float images scaled to uint8; uint8 passes through."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    img = img.astype(np.float32)
    hi = float(img.max()) if img.size else 1.0
    scale = 255.0 if hi <= 1.0 else 1.0
    return np.clip(img * scale, 0, 255).astype(np.uint8)


def convert_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Any of gray / BGR / BGRA to 1-channel (H, W) or 3-channel (H, W, 3) BGR."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if channels == 1:
        if img.ndim == 3:
            code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
            img = cv2.cvtColor(img, code)
        return img
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def fit_size(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size (area interpolation when shrinking)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def read_face(path: str | Path, size: int, channels: int) -> np.ndarray:
    """Read an image file as a face crop at ``size`` with ``channels`` channels.

    Raises DataError naming the file when it is missing, empty or not a decodable image.
    """
    p = Path(path)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise DataError(f"{p}: cannot read file ({exc.__class__.__name__})") from None
    if data.size == 0:
        raise DataError(f"{p}: file is empty (0 bytes); delete it or re-export the image")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise DataError(f"{p}: not a decodable image (corrupt or unsupported format)")
    return fit_size(convert_channels(to_uint8(img), channels), size)
