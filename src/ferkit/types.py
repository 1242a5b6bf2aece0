"""Frozen dataclasses that cross analysis stages (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A detected face in original-image pixels; ``landmarks`` are five (x, y) points
    (right eye, left eye, nose tip, right and left mouth corner, as seen from the subject)
    or None when the detector has none."""

    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None

    def xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


@dataclass(frozen=True)
class FaceCrop:
    """An aligned face (uint8, model input size) and the box it came from."""

    image: np.ndarray
    box: FaceBox


@dataclass
class FaceResult:
    """One face in one frame: where, what, how sure. ``to_dict`` gives the JSONL row."""

    source: str
    frame: int
    time_s: float
    box: FaceBox
    probs: np.ndarray
    classes: list[str]
    negative_score: float
    track_id: int | None = None
    #: ("prob", t): answer "uncertain" below top probability t; ("entropy", t): above t nats;
    #: ("mi", t): above t nats of MC-dropout mutual information (epistemic uncertainty)
    abstain: tuple[str, float] | None = None
    #: MC-dropout mutual information of this face (None without --mc-dropout)
    mutual_info: float | None = None

    @property
    def entropy(self) -> float:
        p = np.clip(self.probs, 1e-12, None)
        return float(-(p * np.log(p)).sum())

    @property
    def uncertain(self) -> bool:
        if self.abstain is None:
            return False
        kind, t = self.abstain
        if kind == "prob":
            return float(np.max(self.probs)) < t
        if kind == "mi":
            return self.mutual_info is not None and self.mutual_info > t
        return self.entropy > t

    @property
    def label(self) -> str:
        return "uncertain" if self.uncertain else self.classes[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    def to_dict(self) -> dict:
        b = self.box
        return {"source": self.source, "frame": self.frame, "time_s": round(self.time_s, 4),
                "track_id": self.track_id, "x": round(b.x, 1), "y": round(b.y, 1),
                "w": round(b.w, 1), "h": round(b.h, 1), "det_score": round(b.score, 4),
                "landmarks": [[round(px, 1), round(py, 1)] for px, py in b.landmarks]
                if b.landmarks else None,
                "label": self.label, "confidence": round(self.confidence, 4),
                "negative_score": round(self.negative_score, 4),
                "probs": {c: round(float(p), 4) for c, p in zip(self.classes, self.probs)},
                **({} if self.mutual_info is None else      # only with --mc-dropout
                   {"entropy": round(self.entropy, 4), "mutual_info": round(self.mutual_info, 5)})}


@dataclass
class FrameResult:
    """Every face of one frame (photo or video frame)."""

    source: str
    frame: int
    time_s: float
    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)
    #: aligned face crops, in memory only (written only with --save-crops)
    crops: list = field(default_factory=list, repr=False)
    #: per-face embeddings, in memory only (for the temporal sequence head)
    embeddings: list = field(default_factory=list, repr=False)

    @property
    def negative_score(self) -> float | None:
        """Mean negative score over the frame's faces (None without faces)."""
        if not self.faces:
            return None
        return float(np.mean([f.negative_score for f in self.faces]))

    def to_dict(self) -> dict:
        return {"source": self.source, "frame": self.frame, "time_s": self.time_s,
                "width": self.width, "height": self.height,
                "negative_score": self.negative_score,
                "faces": [f.to_dict() for f in self.faces]}

    def to_dataframe(self):
        import pandas as pd
        return pd.DataFrame([f.to_dict() for f in self.faces])
