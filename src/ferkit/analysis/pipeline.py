"""Analyzer: wires detection, alignment, classification and tracking; owns its models."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ferkit.analysis.align import align_face
from ferkit.analysis.detect import make_detector
from ferkit.analysis.media import DEFAULT_MAX_PIXELS, Frame, load_image, video_frames
from ferkit.analysis.track import IoUTracker, SceneCut
from ferkit.errors import ConfigError
from ferkit.labels import negative_indices
from ferkit.types import FaceResult, FrameResult
from ferkit.zoo.classify import OnnxClassifier


@dataclass
class AnalyzerConfig:
    """Options of the analysis path (the CLI maps its flags onto these)."""

    model: str = "default"            # shipped name or .onnx path
    detector: str = "yunet"           # yunet | haar | none
    score_threshold: float = 0.7
    min_face: int = 10
    max_side: int = 1920              # detect on a downscaled copy above this long side
    threads: int = 2
    tta: bool | str | None = None     # None: as the model card says (see OnnxClassifier)
    smooth: str = "ema"               # ema | none (videos and webcams only)
    ema_alpha: float = 0.5
    iou_threshold: float = 0.3
    max_missed: int = 8
    scene_cut: float = 20.0           # thumbnail difference (0-255) that resets tracks; 0: off
    max_pixels: int = DEFAULT_MAX_PIXELS
    abstain: str | None = None        # "prob:0.4" or "entropy:1.2": answer "uncertain"
    temporal: str | None = None       # GRU sequence head (.temporal.npz) for video tracks
    mc_dropout: int = 0               # T Monte-Carlo dropout passes (mean probs + mutual info)
    detect_every: int = 2             # videos: run the detector on every Nth frame only; frames
                                      # between reuse the last boxes (reset at scene cuts)
    pipeline: bool = True             # videos: decode+detect in a second thread when threads >= 2

    @classmethod
    def build(cls, **kw) -> "AnalyzerConfig":
        names = {f.name for f in fields(cls)}
        bad = set(kw) - names
        if bad:
            raise ConfigError(f"unknown analyzer option(s): {', '.join(sorted(bad))}")
        cfg = cls(**kw)
        if cfg.smooth not in ("ema", "none"):
            raise ConfigError("smooth must be ema or none")
        if not 0 < cfg.ema_alpha <= 1:
            raise ConfigError("ema_alpha must be in (0, 1]")
        if cfg.detect_every < 1:
            raise ConfigError("detect_every must be >= 1")
        cfg.abstain_rule()
        return cfg

    def abstain_rule(self) -> tuple[str, float] | None:
        if not self.abstain:
            return None
        kind, _, value = self.abstain.partition(":")
        try:
            t = float(value)
        except ValueError:
            t = None
        if kind not in ("prob", "entropy", "mi") or t is None:
            raise ConfigError(f"--abstain {self.abstain!r}: use prob:THRESHOLD (e.g. prob:0.4), "
                              f"entropy:THRESHOLD (nats, e.g. entropy:1.2) or mi:THRESHOLD "
                              f"(MC-dropout mutual information, needs --mc-dropout)")
        if kind == "mi" and self.mc_dropout < 2:
            raise ConfigError("--abstain mi:T needs --mc-dropout T (at least 2 passes)")
        return kind, t


@dataclass
class StageTimes:
    """Seconds spent per stage, for benchmarks."""

    detect: float = 0.0
    align: float = 0.0
    classify: float = 0.0
    frames: int = 0
    extra: dict = field(default_factory=dict)


def _threaded(gen: Iterator, depth: int = 3) -> Iterator:
    """Run a generator in a background thread, ``depth`` items ahead (decoding and
    detection of the next frames overlap classification of this one; OpenCV and ONNX
    Runtime release the GIL). Errors are re-raised in the consumer; closing the returned
    generator stops the thread."""
    import queue
    import threading
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in gen:
                if not put(item):
                    break
            put(done)
        except BaseException as exc:  # handed to the consumer
            put(exc)
        finally:
            gen.close()

    th = threading.Thread(target=work, name="ferkit-detect", daemon=True)
    th.start()

    def consume():
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            th.join(timeout=5)
    return consume()


class Analyzer:
    """Find every face, align it, classify it; track and smooth across video frames."""

    def __init__(self, config: AnalyzerConfig | None = None, **overrides):
        self.config = config or AnalyzerConfig.build(**overrides)
        c = self.config
        self.detector = make_detector(c.detector, score_threshold=c.score_threshold,
                                      min_face=c.min_face, max_side=c.max_side)
        self.classifier = OnnxClassifier(c.model, threads=c.threads, tta=c.tta)
        self.classes = self.classifier.classes
        self._video_clf = None
        self.negative_idx = negative_indices(self.classes)
        self.times = StageTimes()
        self._abstain = self.config.abstain_rule()
        self.temporal = None
        if c.temporal:
            from ferkit.analysis.temporal import TemporalHead
            if c.mc_dropout:
                raise ConfigError("--temporal and --mc-dropout cannot be combined")
            self.temporal = TemporalHead(c.temporal)
            dim = self.classifier.session.get_outputs()[-1].shape[1]
            self.temporal.check_model(self.classifier.ref.path, int(dim))

    def analyze_image(self, image: np.ndarray | str | Path, *, source: str | None = None,
                      frame: int = 0, time_s: float = 0.0) -> FrameResult:
        """All faces of one BGR image (or image path)."""
        if not isinstance(image, np.ndarray):
            source = source or str(image)
            image = load_image(image, self.config.max_pixels)
        t0 = time.perf_counter()
        boxes = self.detector.detect(image)
        self.times.detect += time.perf_counter() - t0
        return self._classify(image, boxes, source, frame, time_s)

    def _prepare(self, image, boxes):
        """Aligned crops and the classifier's input batch (None without faces)."""
        t1 = time.perf_counter()
        crops = [align_face(image, b, self.classifier.size, self.classifier.channels).image
                 for b in boxes]
        x = self.classifier.preprocess(crops) if crops else None
        self.times.align += time.perf_counter() - t1
        return crops, x

    def _classify(self, image, boxes, source, frame, time_s, clf=None,
                  prepared=None) -> FrameResult:
        clf = clf or self.classifier
        crops, x = prepared if prepared is not None else self._prepare(image, boxes)
        t2 = time.perf_counter()
        mi = [None] * len(crops)
        if not crops:
            probs = np.zeros((0, len(self.classes)))
        elif self.temporal is not None:
            probs, result_emb = clf.predict_with_embeddings(x, preprocessed=True)
        elif self.config.mc_dropout >= 2:
            st = clf.predict_mc(x, self.config.mc_dropout, seed=frame, preprocessed=True)
            probs, mi = st["mean"], [float(v) for v in st["mutual_info"]]
        else:
            probs = clf.predict_proba(x, preprocessed=True)
        t3 = time.perf_counter()
        self.times.classify += t3 - t2
        self.times.frames += 1
        result = FrameResult(source or "<array>", frame, time_s, image.shape[1], image.shape[0])
        for b, p, m in zip(boxes, probs, mi):
            result.faces.append(FaceResult(result.source, frame, time_s, b, p, self.classes,
                                           float(p[self.negative_idx].sum()),
                                           abstain=self._abstain, mutual_info=m))
        result.crops = crops  # aligned faces, kept only in memory for --save-crops
        if self.temporal is not None and crops:
            result.embeddings = list(result_emb)
        return result

    def analyze_frames(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, FrameResult]]:
        """Frames of one video: per-frame results with track ids and smoothed probs."""
        c = self.config
        tracker = IoUTracker(c.iou_threshold, c.max_missed,
                             c.ema_alpha if c.smooth == "ema" and self.temporal is None else 1.0,
                             tuple(self.negative_idx))
        cut = SceneCut(c.scene_cut) if c.scene_cut > 0 else None
        threaded = c.pipeline and c.threads >= 2
        detected = _threaded(self._detect_stage(frames, cut)) if threaded \
            else self._detect_stage(frames, cut)
        clf = self._video_classifier() if threaded else self.classifier
        try:
            for fr, boxes, prepared, is_cut in detected:
                if is_cut:
                    tracker.reset()
                res = tracker.update(self._classify(fr.image, boxes, fr.source, fr.index,
                                                    fr.time_s, clf, prepared))
                if self.temporal is not None:
                    self._sequence(res, tracker)
                yield fr, res
        finally:
            detected.close()

    def _video_classifier(self) -> OnnxClassifier:
        """With decoding, detection and alignment in their own thread, classification gets
        one thread fewer (measured on 2 cores: 42 frames/s against 38 with both stages on
        2 threads each)."""
        if self._video_clf is None:
            c = self.config
            self._video_clf = OnnxClassifier(self.classifier.ref, threads=max(1, c.threads - 1),
                                             tta=c.tta)
        return self._video_clf

    def _sequence(self, res: FrameResult, tracker: IoUTracker) -> None:
        """Replace each tracked face's probabilities by the GRU's over its last frames."""
        for face, emb in zip(res.faces, res.embeddings):
            face.probs = self.temporal.update(face.track_id, emb)
            face.negative_score = float(face.probs[self.negative_idx].sum())
        self.temporal.forget(tracker.active_ids())

    def _detect_stage(self, frames: Iterable[Frame], cut):
        every, last, n = max(1, self.config.detect_every), None, 0
        for fr in frames:
            is_cut = cut is not None and cut(fr.image)
            if last is None or is_cut or n % every == 0:
                t0 = time.perf_counter()
                last = self.detector.detect(fr.image)
                self.times.detect += time.perf_counter() - t0
                n = 0
            n += 1
            yield fr, last, self._prepare(fr.image, last), is_cut

    def analyze_video(self, source: str | int, *, stride: int = 1, start: float = 0.0,
                      end: float | None = None) -> Iterator[FrameResult]:
        """A generator of per-frame results (constant memory on long videos)."""
        for _, res in self.analyze_frames(video_frames(source, stride=stride, start=start,
                                                       end=end)):
            yield res

    def analyze_paths(self, paths: Iterable[str]) -> Iterator[tuple[str, FrameResult | Exception]]:
        """Photos one by one; a bad file yields its error instead of stopping the batch."""
        from ferkit.errors import FerkitError
        for p in paths:
            try:
                yield p, self.analyze_image(p, source=p)
            except FerkitError as exc:
                yield p, exc
