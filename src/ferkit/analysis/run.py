"""`ferkit analyze` over many inputs: photos, folders, videos, webcams -> output folder.
Bad inputs are reported and skipped; outputs are committed atomically, also on Ctrl-C."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import FerkitError
from ..io import write_json
from . import writers
from .media import is_video, video_fps, video_frames
from .pipeline import Analyzer
from .track import TimelineBuilder

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    out: Path
    formats: tuple[str, ...] = ("jsonl", "csv")
    annotate: bool = False
    blur_faces: bool = False
    save_crops: bool = False
    stride: int = 1
    start: float = 0.0
    end: float | None = None
    alert: float | None = None
    alert_min_seconds: float = 2.0
    timeline_bin: float = 1.0
    show: bool = False
    progress: bool = True
    aggregate_only: bool = False      # no per-face rows: counts and timelines only
    on_frame: Callable[[str, int, int | None], None] | None = None  # (input, done, total)

    def check(self) -> None:
        if self.aggregate_only and self.save_crops:
            raise FerkitError("--aggregate-only stores no face data: drop --save-crops")
        if self.aggregate_only and self.annotate and not self.blur_faces:
            raise FerkitError("--aggregate-only with --annotate needs --blur-faces")


@dataclass
class RunSummary:
    analysed: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    faces: int = 0
    frames: int = 0
    alerts: list = field(default_factory=list)
    interrupted: bool = False
    photo_counts: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"analysed": len(self.analysed), "failed": self.failed,
                "no_face": self.no_face, "faces": self.faces, "frames": self.frames,
                "alerts": len(self.alerts), "interrupted": self.interrupted}


def run_analysis(analyzer: Analyzer, inputs: list, opts: RunOptions) -> RunSummary:
    from tqdm import tqdm
    opts.check()
    opts.out.mkdir(parents=True, exist_ok=True)
    rows = writers.FaceRowWriter(opts.out, analyzer.classes,
                                 () if opts.aggregate_only else opts.formats,
                                 uncertainty=analyzer.config.mc_dropout >= 2)
    summary = RunSummary()
    names: set[str] = set()
    try:
        for item in tqdm(inputs, desc="inputs", disable=not opts.progress or len(inputs) < 2):
            frames_before = summary.frames
            try:
                if isinstance(item, int) or is_video(item):
                    _video(analyzer, item, opts, rows, summary, names)
                else:
                    _photo(analyzer, item, opts, rows, summary, names)
                summary.analysed.append(str(item))
            except FerkitError as exc:
                log.error("%s", exc)
                summary.failed.append({"input": str(item), "error": str(exc)})
            except KeyboardInterrupt:       # Ctrl-C: the normal end of a webcam session
                summary.interrupted = True
                if summary.frames > frames_before:
                    summary.analysed.append(str(item))
                log.warning("interrupted: keeping what was analysed so far")
                break
    finally:
        rows.close(commit=True)
    if summary.photo_counts:
        writers.write_table(opts.out / "photos.csv", summary.photo_counts)
    if opts.alert is not None:
        write_json(opts.out / "alerts.json", summary.alerts)
    write_json(opts.out / "summary.json", summary.to_dict())
    return summary


def _unique(names: set[str], item) -> str:
    stem = f"webcam{item}" if isinstance(item, int) else Path(item).stem
    name, i = stem, 1
    while name in names:
        i += 1
        name = f"{stem}_{i}"
    names.add(name)
    return name


def _photo(analyzer, path, opts, rows, summary, names):
    res = analyzer.analyze_image(path, source=str(path))
    rows.write(res)
    summary.frames += 1
    summary.faces += len(res.faces)
    counts = np.bincount([int(np.argmax(f.probs)) for f in res.faces],
                         minlength=len(analyzer.classes))
    summary.photo_counts.append({"source": str(path), "faces": len(res.faces),
                                 "negative": res.negative_score,
                                 **{f"n_{c}": int(n) for c, n in zip(analyzer.classes, counts)}})
    if not res.faces:
        log.warning("%s: no face found", path)
        summary.no_face.append(str(path))
    name = _unique(names, path)
    if opts.annotate:
        from .media import load_image
        img = load_image(path, analyzer.config.max_pixels)
        writers.write_image(opts.out / "annotated" / f"{name}.jpg",
                            writers.annotate(img, res, blur=opts.blur_faces))
    if opts.save_crops:
        for i, crop in enumerate(res.crops):
            writers.write_image(opts.out / "crops" / f"{name}_{i}.png", crop)


def _show(img) -> bool:
    """Live window; False when the user pressed Esc or q."""
    import cv2
    try:
        cv2.imshow("ferkit", img)
        key = cv2.waitKey(1) & 0xFF
    except cv2.error:
        raise FerkitError("--show needs an OpenCV build with a GUI (pip install "
                          "opencv-python instead of opencv-python-headless) and a display") from None
    return key not in (27, ord("q"))


def _video(analyzer, source, opts, rows, summary, names):
    import cv2
    from tqdm import tqdm
    name = _unique(names, source)
    live = isinstance(source, int)
    timeline = TimelineBuilder(analyzer.classes, opts.timeline_bin, opts.alert,
                               opts.alert_min_seconds)
    sink = None
    frames = video_frames(source, stride=opts.stride, start=opts.start, end=opts.end)
    total = None if live else int(cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FRAME_COUNT))
    total = total // max(1, opts.stride) if total else None
    bar = tqdm(total=total, desc=name, disable=not opts.progress, leave=False)
    frames_at_start = summary.frames
    try:
        for fr, res in analyzer.analyze_frames(frames):
            rows.write(res)
            timeline.add(res)
            summary.frames += 1
            summary.faces += len(res.faces)
            if opts.annotate or opts.show:
                img = writers.annotate(fr.image, res, blur=opts.blur_faces)
                if opts.annotate:
                    if sink is None:
                        fps = 30.0 if live else video_fps(str(source)) / max(1, opts.stride)
                        sink = writers.VideoSink(opts.out / "annotated" / f"{name}.mp4", fps,
                                                 (img.shape[1], img.shape[0]))
                    sink.write(img)
                if opts.show and not _show(img):
                    break
            if opts.save_crops:
                for i, crop in enumerate(res.crops):
                    writers.write_image(opts.out / "crops" / f"{name}_f{fr.index}_{i}.png", crop)
            bar.update(1)
            if opts.on_frame:
                opts.on_frame(str(source), summary.frames - frames_at_start, total)
    finally:
        bar.close()
        if sink:
            sink.close(commit=True)
        timeline.finish()
        summary.alerts += [{"source": str(source), **a} for a in timeline.alerts]
        writers.write_table(opts.out / f"tracks_{name}.csv", timeline.track_rows())
        rows_t = timeline.timeline_rows()
        writers.write_table(opts.out / f"timeline_{name}.csv", rows_t)
        if rows_t and not writers.timeline_png(opts.out / f"timeline_{name}.png", rows_t,
                                               analyzer.classes,
                                               f"Audience emotions over time: {name}"):
            log.info("timeline plot skipped: pip install 'ferkit[plots]' for matplotlib")
