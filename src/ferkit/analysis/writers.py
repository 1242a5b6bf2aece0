"""The only module that writes analysis results: per-face CSV/JSONL rows, annotated images
and videos (optionally with faces pixelated), face crops, track and timeline tables and
plots. Everything goes to a temporary file first and is renamed into place on success."""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from ferkit.io import atomic_path, write_text
from ferkit.types import FaceBox, FrameResult

FIELDS = ["source", "frame", "time_s", "track_id", "x", "y", "w", "h", "det_score",
          "landmarks", "label", "confidence", "negative_score"]
UNCERTAINTY_FIELDS = ["entropy", "mutual_info"]     # with --mc-dropout only


class FaceRowWriter:
    """Streams one row per face to ``faces.jsonl`` and/or ``faces.csv`` in ``out_dir``.

    Rows go to hidden temporary files; ``close(commit=True)`` renames them into place, so
    an interrupted run leaves no partial output (Ctrl-C still commits what was analysed).
    """

    def __init__(self, out_dir: Path, classes: list[str], formats=("jsonl", "csv"),
                 uncertainty: bool = False):
        self.classes, self.rows = classes, 0
        self.fields = FIELDS + (UNCERTAINTY_FIELDS if uncertainty else [])
        self._files: list[tuple[Path, Path]] = []
        out_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = self._csv = None
        if "jsonl" in formats:
            self._jsonl = self._open(out_dir / "faces.jsonl")
        if "csv" in formats:
            fh = self._open(out_dir / "faces.csv")
            self._csv = csv.writer(fh)
            self._csv.writerow(self.fields + [f"p_{c}" for c in classes])
            self._csv_fh = fh

    def _open(self, final: Path):
        tmp = final.with_name(f".{final.name}.part")
        self._files.append((tmp, final))
        return open(tmp, "w", newline="", encoding="utf-8")

    def write(self, frame: FrameResult) -> None:
        for face in frame.faces:
            d = face.to_dict()
            if self._jsonl:
                self._jsonl.write(json.dumps(d) + "\n")
            if self._csv:
                row = [d.get(k) for k in self.fields]
                row[self.fields.index("landmarks")] = json.dumps(d["landmarks"])
                self._csv.writerow(row + [d["probs"][c] for c in self.classes])
            self.rows += 1

    def close(self, commit: bool = True) -> None:
        """Rename the rows into place (or drop them); with no format this writes nothing."""
        for fh in (self._jsonl, getattr(self, "_csv_fh", None)):
            if fh:
                fh.close()
        for tmp, final in self._files:
            if commit:
                os.replace(tmp, final)
            elif tmp.exists():
                tmp.unlink()


def merge_rows(out_dir: Path, parts: list[Path], formats) -> None:
    """Concatenate the partitions' faces.jsonl / faces.csv (one CSV header) into
    OUT/faces.jsonl / faces.csv, atomically, in the order given."""
    for fmt in formats:
        final = out_dir / f"faces.{fmt}"
        with atomic_path(final) as tmp, open(tmp, "wb") as dst:
            header_done = False
            for part in parts:
                src = part / final.name
                if not src.exists():
                    continue
                with open(src, "rb") as fh:
                    if fmt == "csv":
                        header = fh.readline()
                        if not header_done:
                            dst.write(header)
                            header_done = True
                    shutil.copyfileobj(fh, dst)


class ParquetRows:
    """One input's face rows as a Parquet file (probabilities as p_<class> columns), written
    to a hidden file and renamed into place on commit. Needs pyarrow (ferkit[scale])."""

    def __init__(self, path: Path, classes: list[str]):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            from ferkit.errors import ConfigError
            raise ConfigError("--format parquet needs pyarrow: pip install 'ferkit[scale]'") \
                from None
        self.path, self.classes, self.rows = path, classes, []

    def write(self, frame: FrameResult) -> None:
        for face in frame.faces:
            d = face.to_dict()
            probs = d.pop("probs")
            d["landmarks"] = json.dumps(d["landmarks"])
            self.rows.append({**d, **{f"p_{c}": probs[c] for c in self.classes}})

    def close(self, commit: bool = True) -> None:
        if not commit:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        cols = FIELDS + [f"p_{c}" for c in self.classes]
        extra = [k for k in (self.rows[0] if self.rows else {}) if k not in cols]
        table = pa.Table.from_pylist(self.rows, schema=_schema(pa, cols + extra, self.classes))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp)


def _schema(pa, cols, classes):
    types = {"source": pa.string(), "frame": pa.int64(), "time_s": pa.float64(),
             "track_id": pa.int64(), "landmarks": pa.string(), "label": pa.string()}
    return pa.schema([(c, types.get(c, pa.float64())) for c in cols])


def pixelate(image: np.ndarray, box: FaceBox, blocks: int = 5, pad: float = 0.25) -> None:
    """Replace a face (box enlarged by ``pad``) by a coarse mosaic, in place."""
    h, w = image.shape[:2]
    x0, y0 = int(max(0, box.x - pad * box.w)), int(max(0, box.y - pad * box.h))
    x1, y1 = int(min(w, box.x + box.w * (1 + pad))), int(min(h, box.y + box.h * (1 + pad)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = image[y0:y1, x0:x1]
    small = cv2.resize(roi, (blocks, blocks), interpolation=cv2.INTER_AREA)
    image[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)


def annotate(image: np.ndarray, frame: FrameResult, *, blur: bool = False) -> np.ndarray:
    """A copy of ``image`` with boxes, label + confidence, probability bars and track ids."""
    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 900)
    for f in frame.faces:
        if blur:
            pixelate(out, f.box)
        x, y, w, h = (int(round(v)) for v in (f.box.x, f.box.y, f.box.w, f.box.h))
        color = (60, 60, 230) if f.negative_score >= 0.5 else (80, 200, 80)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, max(1, int(2 * scale)))
        tag = f"{f.label} {f.confidence:.2f}" + (f" #{f.track_id}" if f.track_id else "")
        cv2.putText(out, tag, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                    color, max(1, int(2 * scale)), cv2.LINE_AA)
        bar_w = max(30, int(w * 0.8))
        bh = max(3, int(6 * scale))
        for i, (c, p) in enumerate(zip(f.classes, f.probs)):
            yy = y + h + 4 + i * (bh + 2)
            if yy + bh >= out.shape[0]:
                break
            cv2.rectangle(out, (x, yy), (x + int(bar_w * float(p)), yy + bh), color, -1)
            cv2.putText(out, c[:3], (x + bar_w + 3, yy + bh), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3 * scale + 0.05, color, 1, cv2.LINE_AA)
    return out


def write_image(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        ext = path.suffix.lower() if path.suffix else ".jpg"
        ok, buf = cv2.imencode(ext, image)
        if not ok:
            raise OSError(f"{path}: OpenCV cannot encode {ext}")
        tmp.write_bytes(buf.tobytes())


class VideoSink:
    """Annotated video written to a temporary file, renamed into place on ``close``."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self.path = path
        self.tmp = path.with_name(f".{path.stem}.part{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._w = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._w.isOpened():
            raise OSError(f"{path}: OpenCV cannot open a video writer (mp4v)")
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self._w.write(image)
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        self._w.release()
        if commit and self.frames:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()


def write_table(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def timeline_png(path: Path, rows: list[dict], classes: list[str], title: str) -> bool:
    """Stacked emotion shares and the negative score over time; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [r["t_start_s"] for r in rows]
    shares = np.array([[r[f"share_{c}"] or 0.0 for c in classes] for r in rows]).T
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 5), sharex=True,
                               gridspec_kw={"height_ratios": [3, 1]})
    a.stackplot(t, shares, labels=classes, step="post", alpha=0.85)
    a.set(ylabel="share of faces", ylim=(0, 1), title=title)
    a.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    b.step(t, [r["negative"] if r["negative"] is not None else np.nan for r in rows],
           where="post", color="crimson")
    b.set(xlabel="time (s)", ylabel="negative", ylim=(0, 1))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return True
