"""Tracking across frames: greedy IoU association (with a centre-distance fallback for
small moving faces) that survives missed detections, per-track probability smoothing,
per-track summaries, the audience timeline and negative-emotion alerts."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ferkit.types import FaceBox, FrameResult


def iou(a: FaceBox, b: FaceBox) -> float:
    ax0, ay0, ax1, ay1 = a.xyxy()
    bx0, by0, bx1, by1 = b.xyxy()
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _centre_close(a: FaceBox, b: FaceBox) -> float:
    """1 - centre distance / mean size, for association when boxes barely overlap
    (0 unless the two boxes have a similar size)."""
    ratio = (a.w * a.h) / max(b.w * b.h, 1e-6)
    if not 0.6 < ratio < 1.7:
        return 0.0
    d = np.hypot(a.x + a.w / 2 - b.x - b.w / 2, a.y + a.h / 2 - b.y - b.h / 2)
    return max(0.0, 1.0 - d / ((a.w + a.h + b.w + b.h) / 4))


class SceneCut:
    """Flags hard cuts between consecutive frames, so the tracker does not hand a face's id
    to another person after the camera switches: the mean absolute difference of 64x36
    grey thumbnails above ``diff`` (0-255), or a grey-histogram correlation below 0.7."""

    def __init__(self, diff: float = 20.0, min_correl: float = 0.7):
        self.diff, self.min_correl = diff, min_correl
        self._prev = None

    def __call__(self, image: np.ndarray) -> bool:
        import cv2
        small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        hist = cv2.calcHist([gray], [0], None, [32], [0, 256])
        cv2.normalize(hist, hist)
        cut = False
        if self._prev is not None:
            pg, ph = self._prev
            cut = (float(np.abs(gray.astype(np.int16) - pg).mean()) > self.diff or
                   cv2.compareHist(ph, hist, cv2.HISTCMP_CORREL) < self.min_correl)
        self._prev = (gray.astype(np.int16), hist)
        return bool(cut)


@dataclass
class _Track:
    id: int
    box: FaceBox
    probs: np.ndarray
    missed: int = 0


@dataclass
class IoUTracker:
    """Assigns stable ids to faces frame by frame; smooths probabilities per track with an
    exponential moving average (``alpha`` weight of the newest frame; 1.0 = off)."""

    iou_threshold: float = 0.3
    max_missed: int = 8
    alpha: float = 0.5
    negative_idx: tuple[int, ...] = ()
    _tracks: list[_Track] = field(default_factory=list)
    _next: int = 1

    def active_ids(self) -> set[int]:
        return {t.id for t in self._tracks}

    def reset(self) -> None:
        """Forget every open track (after a scene cut); ids keep counting up."""
        self._tracks = []

    def update(self, frame: FrameResult) -> FrameResult:
        faces = frame.faces
        pairs = []
        for ti, t in enumerate(self._tracks):
            for fi, f in enumerate(faces):
                score = iou(t.box, f.box)
                if score < self.iou_threshold:
                    close = _centre_close(t.box, f.box)
                    score = 0.5 * close if close > 0.5 else 0.0
                if score > 0:
                    pairs.append((score, ti, fi))
        used_t, used_f = set(), set()
        for _, ti, fi in sorted(pairs, reverse=True):
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            t, f = self._tracks[ti], faces[fi]
            t.probs = self.alpha * f.probs + (1 - self.alpha) * t.probs
            t.box, t.missed = f.box, 0
            self._apply(f, t)
        for fi, f in enumerate(faces):
            if fi not in used_f:
                t = _Track(self._next, f.box, f.probs.copy())
                self._next += 1
                self._tracks.append(t)
                self._apply(f, t)
        for ti, t in enumerate(self._tracks):
            if ti not in used_t and t.box is not None:
                t.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        return frame

    def _apply(self, face, track: _Track) -> None:
        """Give the face its track id and the track's smoothed probabilities."""
        face.track_id = track.id
        face.probs = track.probs.copy()
        face.negative_score = float(track.probs[list(self.negative_idx)].sum())


@dataclass
class TimelineBuilder:
    """Accumulates per-track summaries, an audience timeline in ``bin_s`` bins and alerts."""

    classes: list[str]
    bin_s: float = 1.0
    alert_threshold: float | None = None
    alert_min_s: float = 2.0
    tracks: dict = field(default_factory=dict)
    bins: dict = field(default_factory=dict)
    alerts: list = field(default_factory=list)
    _open: dict = field(default_factory=dict)

    def add(self, frame: FrameResult) -> None:
        k = len(self.classes)
        b = self.bins.setdefault(int(frame.time_s // self.bin_s),
                                 {"frames": 0, "faces": 0, "counts": np.zeros(k), "neg": 0.0})
        b["frames"] += 1
        seen = set()
        for f in frame.faces:
            top = int(np.argmax(f.probs))
            b["faces"] += 1
            b["counts"][top] += 1
            b["neg"] += f.negative_score
            tid = f.track_id if f.track_id is not None else -1
            seen.add(tid)
            t = self.tracks.setdefault(tid, {"first_s": frame.time_s, "frames": 0,
                                             "counts": np.zeros(k), "neg": 0.0})
            t["frames"] += 1
            t["counts"][top] += 1
            t["neg"] += f.negative_score
            t["last_s"] = frame.time_s
            self._alert(tid, f.negative_score, frame.time_s)
        for tid in list(self._open):
            if tid not in seen:
                self._close(tid)

    def _alert(self, tid, score, t):
        if self.alert_threshold is None:
            return
        if score >= self.alert_threshold:
            ev = self._open.setdefault(tid, {"track_id": tid, "start_s": t, "peak": score})
            ev["end_s"], ev["peak"] = t, max(ev["peak"], score)
        elif tid in self._open:
            self._close(tid)

    def _close(self, tid):
        ev = self._open.pop(tid)
        if ev["end_s"] - ev["start_s"] >= self.alert_min_s:
            ev["duration_s"] = round(ev["end_s"] - ev["start_s"], 3)
            self.alerts.append(ev)

    def finish(self) -> None:
        for tid in list(self._open):
            self._close(tid)

    def track_rows(self) -> list[dict]:
        rows = []
        for tid, t in sorted(self.tracks.items()):
            share = t["counts"] / max(t["frames"], 1)
            rows.append({"track_id": tid, "first_s": round(t["first_s"], 3),
                         "last_s": round(t["last_s"], 3), "frames": t["frames"],
                         "dominant": self.classes[int(np.argmax(t["counts"]))],
                         "mean_negative": round(t["neg"] / max(t["frames"], 1), 4),
                         **{f"share_{c}": round(float(s), 4) for c, s in zip(self.classes, share)}})
        return rows

    def timeline_rows(self) -> list[dict]:
        rows = []
        for i, b in sorted(self.bins.items()):
            n = max(b["faces"], 1)
            rows.append({"t_start_s": round(i * self.bin_s, 3), "frames": b["frames"],
                         "faces": b["faces"],
                         "negative": round(b["neg"] / n, 4) if b["faces"] else None,
                         **{f"share_{c}": round(float(x) / n, 4) if b["faces"] else None
                            for c, x in zip(self.classes, b["counts"])}})
        return rows
