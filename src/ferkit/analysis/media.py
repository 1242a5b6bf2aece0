"""Media sources -> frames: image files, folders, video files, webcams. The only module
that opens cv2.VideoCapture. Bad inputs raise MediaError naming the input."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ferkit.analysis.imageinfo import header_size
from ferkit.data.images import IMAGE_EXTS, to_uint8
from ferkit.errors import DataError

log = logging.getLogger(__name__)
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
DEFAULT_MAX_PIXELS = 60_000_000
MIN_SIDE = 8


class MediaError(DataError):
    """An input that cannot be read as an image or a video."""


class TooLargeError(MediaError):
    """An image over the pixel cap (a decompression bomb or just too big)."""


@dataclass
class Frame:
    source: str
    index: int
    time_s: float
    image: np.ndarray          # BGR uint8


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to BGR uint8 (gray, RGBA and 16-bit converted)."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if p.is_dir():
        raise MediaError(f"{p}: is a folder, not an image")
    data = p.read_bytes()
    if not data:
        raise MediaError(f"{p}: file is empty (0 bytes)")
    return decode_image(data, str(p), max_pixels)


def decode_image(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes of an image file -> BGR uint8; MediaError naming ``name`` when unusable."""
    if not data:
        raise MediaError(f"{name}: no data (empty file)")
    size = header_size(data)
    if size and size[0] * size[1] > max_pixels:
        raise TooLargeError(f"{name}: image is {size[0]}x{size[1]} "
                         f"({size[0] * size[1] / 1e6:.0f} MP), over the {max_pixels / 1e6:.0f} MP "
                         f"cap; downscale it or raise --max-pixels")
    if _truncated(data):
        raise MediaError(f"{name}: truncated image file (the end of the data is missing); "
                         f"re-download or re-export it")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise MediaError(f"{name}: not a decodable image (corrupt, truncated or unsupported)")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise TooLargeError(f"{name}: image is {img.shape[1]}x{img.shape[0]}, over the pixel cap")
    if min(img.shape[:2]) < MIN_SIDE:
        raise MediaError(f"{name}: image is {img.shape[1]}x{img.shape[0]} pixels, too small "
                         f"to hold a face")
    img = to_uint8(img)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def _truncated(data: bytes) -> bool:
    """JPEG without its end-of-image marker, or PNG without its IEND chunk."""
    if data[:2] == b"\xff\xd8":
        return b"\xff\xd9" not in data[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    return False


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def expand_inputs(inputs: list[str]) -> list[str]:
    """Folders become their images and videos (recursive, sorted); '-' reads paths from stdin."""
    import sys
    out: list[str] = []
    for item in inputs:
        if item == "-":
            out += [ln.strip() for ln in sys.stdin if ln.strip()]
            continue
        p = Path(item)
        if p.is_dir():
            out += [str(f) for f in sorted(p.rglob("*"))
                    if f.is_file() and f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS]
        else:
            out.append(item)
    return out


def open_capture(source: str | int) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        what = f"webcam {source}" if isinstance(source, int) else str(source)
        cap.release()
        raise MediaError(f"{what}: cannot be opened as a video"
                         + (" (no camera there?)" if isinstance(source, int) else ""))
    return cap


def video_frames(source: str | int, *, stride: int = 1, start: float = 0.0,
                 end: float | None = None) -> Iterator[Frame]:
    """Frames of a video file or webcam (``source`` int), every ``stride``-th, between
    ``start`` and ``end`` seconds. Constant memory; raises MediaError if nothing decodes."""
    cap = open_capture(source)
    name = f"webcam:{source}" if isinstance(source, int) else str(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    live = isinstance(source, int)
    if fps <= 0 or fps > 1000:
        fps = 30.0
    if start > 0 and not live:
        cap.set(cv2.CAP_PROP_POS_MSEC, start * 1000)
    index = int(round(start * fps)) if not live else 0
    got = 0
    try:
        while True:
            ok, img = cap.read()
            if not ok or img is None:
                break
            t = index / fps
            if end is not None and t > end:
                break
            if (index - int(round(start * fps))) % max(1, stride) == 0:
                got += 1
                yield Frame(name, index, t, img)
            index += 1
    finally:
        cap.release()
    if got == 0:
        raise MediaError(f"{name}: no frame could be decoded (empty, corrupt or unsupported video)")


def video_fps(path: str) -> float:
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    return fps if 0 < fps < 1000 else 30.0
