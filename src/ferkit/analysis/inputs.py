"""One input (a photo, a video file or a webcam) analysed into its own partition: the
function every engine runs, so the local and the Ray engine give the same results by
construction. A partition is ``OUT/parts/NAME/`` (its faces as JSONL/CSV and ``input.json``,
the record that marks it complete), built in a hidden folder and renamed into place; with
``parquet`` its rows also go to ``OUT/faces.parquet/NAME.parquet``. Annotated media, crops,
track and timeline tables are written straight into OUT, each file atomically."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from ferkit.analysis import writers
from ferkit.analysis.media import is_video, video_fps, video_frames
from ferkit.analysis.track import TimelineBuilder
from ferkit.errors import FerkitError
from ferkit.io import write_json

log = logging.getLogger(__name__)
ROW_FORMATS = ("jsonl", "csv")


def unique_name(names: set[str], item) -> str:
    stem = f"webcam{item}" if isinstance(item, int) else Path(item).stem
    name, i = stem, 1
    while name in names:
        i += 1
        name = f"{stem}_{i}"
    names.add(name)
    return name


def plan(inputs: list) -> list[tuple[object, str]]:
    """(input, partition name) for every input, names unique in input order."""
    names: set[str] = set()
    return [(item, unique_name(names, item)) for item in inputs]


def part_dir(out: Path, name: str) -> Path:
    return out / "parts" / name


def done_record(out: Path, item, name: str, complete: bool = True) -> dict | None:
    """The record of this same input's partition (with ``complete``, only a complete one),
    or None (to be analysed)."""
    p = part_dir(out, name) / "input.json"
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    same = rec.get("input") == str(item)
    return rec if same and (rec.get("complete") or not complete) else None


def analyze_input(analyzer, item, name: str, opts) -> dict:
    """Analyse one input into its partition; returns its record. FerkitError for a bad
    input (nothing committed); Ctrl-C commits what was analysed, marked incomplete."""
    out = opts.out
    tmp = out / "parts" / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    formats = () if opts.aggregate_only else tuple(f for f in opts.formats if f in ROW_FORMATS)
    rows = writers.FaceRowWriter(tmp, analyzer.classes, formats,
                                 uncertainty=analyzer.config.mc_dropout >= 2)
    parquet = None
    if "parquet" in opts.formats and not opts.aggregate_only:
        parquet = writers.ParquetRows(out / "faces.parquet" / f"{name}.parquet", analyzer.classes)
    rec = {"input": str(item), "name": name, "frames": 0, "faces": 0, "no_face": False,
           "photo_counts": None, "alerts": [], "interrupted": False, "complete": False}
    sinks = [rows] + ([parquet] if parquet else [])
    try:
        if isinstance(item, int) or is_video(item):
            rec["kind"] = "webcam" if isinstance(item, int) else "video"
            _video(analyzer, item, name, opts, sinks, rec)
        else:
            rec["kind"] = "photo"
            _photo(analyzer, item, name, opts, sinks, rec)
        rec["complete"] = True
    except KeyboardInterrupt:
        rec["interrupted"] = True
        if rec["frames"] == 0:
            rows.close(commit=False)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _commit(out, name, tmp, rows, parquet, rec)
        raise
    except Exception:
        rows.close(commit=False)
        if parquet:
            parquet.close(commit=False)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _commit(out, name, tmp, rows, parquet, rec)
    return rec


def _commit(out: Path, name: str, tmp: Path, rows, parquet, rec: dict) -> None:
    rows.close(commit=True)
    if parquet:
        parquet.close(commit=True)
    write_json(tmp / "input.json", rec)
    final = part_dir(out, name)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _write(sinks, res) -> None:
    for s in sinks:
        s.write(res)


def _photo(analyzer, path, name, opts, sinks, rec):
    res = analyzer.analyze_image(path, source=str(path))
    _write(sinks, res)
    rec["frames"], rec["faces"] = 1, len(res.faces)
    counts = np.bincount([int(np.argmax(f.probs)) for f in res.faces],
                         minlength=len(analyzer.classes))
    rec["photo_counts"] = {"source": str(path), "faces": len(res.faces),
                           "negative": res.negative_score,
                           **{f"n_{c}": int(n) for c, n in zip(analyzer.classes, counts)}}
    if not res.faces:
        log.warning("%s: no face found", path)
        rec["no_face"] = True
    if opts.annotate:
        from ferkit.analysis.media import load_image
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


def _frame_outputs(fr, res, opts, name, state) -> bool:
    """Annotated video, live window and crops for one frame; False to stop (window closed)."""
    if opts.annotate or opts.show:
        img = writers.annotate(fr.image, res, blur=opts.blur_faces)
        if opts.annotate:
            if state.get("sink") is None:
                fps = 30.0 if state["live"] else video_fps(str(state["source"])) / max(1, opts.stride)
                state["sink"] = writers.VideoSink(opts.out / "annotated" / f"{name}.mp4", fps,
                                                  (img.shape[1], img.shape[0]))
            state["sink"].write(img)
        if opts.show and not _show(img):
            return False
    if opts.save_crops:
        for i, crop in enumerate(res.crops):
            writers.write_image(opts.out / "crops" / f"{name}_f{fr.index}_{i}.png", crop)
    return True


def _video(analyzer, source, name, opts, sinks, rec):
    import cv2
    from tqdm import tqdm
    live = isinstance(source, int)
    timeline = TimelineBuilder(analyzer.classes, opts.timeline_bin, opts.alert,
                               opts.alert_min_seconds)
    frames = video_frames(source, stride=opts.stride, start=opts.start, end=opts.end)
    total = None if live else int(cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FRAME_COUNT))
    total = total // max(1, opts.stride) if total else None
    bar = tqdm(total=total, desc=name, disable=not opts.progress, leave=False)
    state = {"live": live, "source": source, "sink": None}
    try:
        for fr, res in analyzer.analyze_frames(frames):
            _write(sinks, res)
            timeline.add(res)
            rec["frames"] += 1
            rec["faces"] += len(res.faces)
            if not _frame_outputs(fr, res, opts, name, state):
                break
            bar.update(1)
            if opts.on_frame:
                opts.on_frame(str(source), rec["frames"], total)
    finally:
        bar.close()
        if state["sink"]:
            state["sink"].close(commit=True)
        timeline.finish()
        rec["alerts"] = [{"source": str(source), **a} for a in timeline.alerts]
        writers.write_table(opts.out / f"tracks_{name}.csv", timeline.track_rows())
        rows_t = timeline.timeline_rows()
        writers.write_table(opts.out / f"timeline_{name}.csv", rows_t)
        if rows_t and not writers.timeline_png(opts.out / f"timeline_{name}.png", rows_t,
                                               analyzer.classes,
                                               f"Audience emotions over time: {name}"):
            log.info("timeline plot skipped: pip install 'ferkit[plots]' for matplotlib")
