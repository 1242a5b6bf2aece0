"""Face detection: a FaceDetector protocol and its backends (YuNet by default, OpenCV's
Haar cascade where the installed OpenCV has it, and `none` for inputs that are crops)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ferkit.errors import ConfigError, ModelError
from ferkit.types import FaceBox

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "detectors"
YUNET_FILE = ASSETS / "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


class FaceDetector(Protocol):
    """Finds faces in a BGR uint8 image; boxes in that image's pixels."""

    has_landmarks: bool

    def detect(self, image: np.ndarray) -> list[FaceBox]: ...


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class YuNetDetector:
    """YuNet through cv2.FaceDetectorYN: box, score and five landmarks per face.

    Images whose long side exceeds ``max_side`` are downscaled for detection only; boxes
    come back in original pixels. ``min_face`` drops faces smaller than that many pixels.
    """

    has_landmarks = True

    def __init__(self, weights: str | Path | None = None, *, score_threshold: float = 0.7,
                 nms_threshold: float = 0.3, min_face: int = 10, max_side: int = 1920,
                 top_k: int = 5000):
        path = Path(weights) if weights else YUNET_FILE
        if not path.is_file():
            raise ModelError(f"{path}: YuNet weights not found")
        if weights is None and _sha256(path) != YUNET_SHA256:
            raise ModelError(f"{path}: sha256 mismatch; the shipped YuNet weights are damaged, "
                             f"reinstall ferkit")
        self.score_threshold, self.min_face, self.max_side = score_threshold, min_face, max_side
        self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold,
                                              nms_threshold, top_k)
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        img = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        size = (img.shape[1], img.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(img)
        out = []
        for f in faces if faces is not None else []:
            f = f / scale
            if min(f[2], f[3]) < self.min_face:
                continue
            lm = tuple((float(f[4 + 2 * i]), float(f[5 + 2 * i])) for i in range(5))
            out.append(FaceBox(float(f[0]), float(f[1]), float(f[2]), float(f[3]),
                               float(f[14] * scale), lm))
        return out


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (OpenCV 4.x only; no landmarks, no real score)."""

    has_landmarks = False

    def __init__(self, *, min_face: int = 24, scale_factor: float = 1.1, min_neighbors: int = 5):
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise ConfigError(f"--detector haar needs OpenCV 4.x with Haar cascades; this "
                              f"OpenCV {cv2.__version__} has none. Use --detector yunet")
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"{path}: Haar cascade could not be loaded")
        self.min_face, self.scale_factor, self.min_neighbors = min_face, scale_factor, min_neighbors

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        found = self._cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors,
                                               minSize=(self.min_face, self.min_face))
        return [FaceBox(float(x), float(y), float(w), float(h), 1.0) for x, y, w, h in found]


class WholeImage:
    """``--detector none``: every input already is a face crop."""

    has_landmarks = False

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        h, w = image.shape[:2]
        return [FaceBox(0.0, 0.0, float(w), float(h), 1.0)]


def make_detector(name: str = "yunet", *, score_threshold: float = 0.7, min_face: int = 10,
                  max_side: int = 1920) -> FaceDetector:
    if name == "yunet":
        return YuNetDetector(score_threshold=score_threshold, min_face=min_face,
                             max_side=max_side)
    if name == "haar":
        return HaarDetector(min_face=max(min_face, 24))
    if name == "none":
        return WholeImage()
    raise ConfigError(f"unknown detector {name!r}; choose yunet, haar or none")
