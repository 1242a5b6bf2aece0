"""Readers for each on-disk layout. Each returns a FaceArray; bad items raise a DataError
naming the file (and line), or are skipped and reported when ``skip_bad`` is set."""
from __future__ import annotations

import csv
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ferkit.data.arrays import FaceArray, LoadReport, assemble
from ferkit.data.images import IMAGE_EXTS, convert_channels, fit_size, read_face
from ferkit.errors import DataError
from ferkit.labels import FERPLUS, ClassSpec

USAGE_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}
FER_CSV_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_VOTES = FERPLUS + ("unknown", "nf")


def sniff_csv(path: Path) -> str:
    """``fer2013`` for a challenge CSV, ``labels`` for a ``path,label`` file."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline().strip().lower().replace(" ", "")
    if first.startswith("emotion,pixels"):
        return "fer2013"
    if path.suffix.lower() not in {".csv", ".txt", ".tsv"}:
        raise DataError(f"{path}: not a dataset file; give a folder, a FER2013 CSV or a "
                        f"'path,label' CSV")
    return "labels"


def _decode_many(paths, size, channels, skip_bad, report, workers):
    """Decode files in a thread pool (OpenCV releases the GIL); keep order."""
    def one(p):
        try:
            return read_face(p, size, channels)
        except DataError as exc:
            if not skip_bad:
                raise DataError(f"{exc} (use --skip-bad to skip bad images)") from None
            report.skipped.append(str(exc))
            return None
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(one, paths, chunksize=64))


def _finish(images, labels, paths, spec, source, report, soft=None, soft_classes=None):
    ok = [i for i, im in enumerate(images) if im is not None]
    if not ok:
        raise DataError(f"{source}: no readable image found")
    images = np.stack([images[i] for i in ok])
    soft = None if soft is None else soft[ok]
    return assemble(images, [labels[i] for i in ok], [paths[i] for i in ok], spec, source,
                    report, soft, soft_classes)


def read_fer_csv(path: Path, split: str | None, *, spec: ClassSpec, size: int,
                 channels: int, skip_bad: bool) -> FaceArray:
    """FER2013 challenge CSV: ``emotion,pixels,Usage``; ``split`` filters by Usage."""
    report = LoadReport()
    images, labels, paths = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader)]
        col = {h: i for i, h in enumerate(header)}
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                usage = USAGE_SPLIT.get(row[col["usage"]].strip().lower(), "?") \
                    if "usage" in col else None
                if split is not None and usage is not None and usage != split:
                    continue
                img = _parse_pixels(row[col["pixels"]])
                emotion = int(row[col["emotion"]])
                if not 0 <= emotion < len(FER_CSV_CLASSES):
                    raise ValueError(f"emotion {emotion} is not in 0..6")
            except (ValueError, IndexError) as exc:
                msg = f"{path}:{lineno}: {exc}"
                if not skip_bad:
                    raise DataError(f"{msg} (fix the row or use --skip-bad)") from None
                report.skipped.append(msg)
                continue
            images.append(fit_size(convert_channels(img, channels), size))
            labels.append(FER_CSV_CLASSES[emotion])
            paths.append(f"{path}:{lineno}")
    if not images:
        raise DataError(f"{path}: no rows for split {split!r} (Usage Training/PublicTest/"
                        f"PrivateTest)")
    spec = spec if spec.keep is not None or spec.binary_negative else \
        ClassSpec(FER_CSV_CLASSES, spec.mapping)
    return assemble(images, labels, paths, spec, str(path), report)


def _parse_pixels(text: str) -> np.ndarray:
    values = np.array(text.split(), dtype=np.int64) if text.strip() else np.zeros(0)
    side = int(math.isqrt(values.size))
    if values.size == 0 or side * side != values.size:
        raise ValueError(f"pixels has {values.size} values, expected a square image "
                         f"(2304 for 48x48)")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values must be in 0..255")
    return values.astype(np.uint8).reshape(side, side)


def read_folder(root: Path, *, spec: ClassSpec, size: int, channels: int, skip_bad: bool,
                workers: int = 4) -> FaceArray:
    """``root/<class>/*.{jpg,png,...}``; class order follows ``spec`` or sorted names."""
    report = LoadReport()
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise DataError(f"{root}: no class sub-folders (expected {root}/<class>/*.jpg)")
    paths, labels = [], []
    for d in class_dirs:
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            msg = f"{d}: class folder has no images"
            if not skip_bad:
                raise DataError(f"{msg}; remove the folder or use --skip-bad")
            report.skipped.append(msg)
        paths += [str(f) for f in files]
        labels += [d.name] * len(files)
    images = _decode_many(paths, size, channels, skip_bad, report, workers)
    if spec.keep is None and not spec.binary_negative:
        spec = ClassSpec(_default_order([spec.map_name(n) for n in labels]), spec.mapping)
    return _finish(images, labels, paths, spec, str(root), report)


def _default_order(names):
    """FER2013 order when the names are FER2013 classes, else sorted."""
    from ferkit.labels import FER2013
    found = set(names)
    if found <= set(FER2013):
        return tuple(c for c in FER2013 if c in found)
    return tuple(sorted(found))


def read_label_file(path: Path, *, spec: ClassSpec, size: int, channels: int,
                    skip_bad: bool, workers: int = 4) -> FaceArray:
    """CSV of ``path,label`` rows (header optional); paths relative to the CSV's folder."""
    report = LoadReport()
    paths, labels = [], []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or row[0].startswith("#"):
                continue
            if lineno == 1 and row[0].strip().lower() in {"path", "file", "image", "filename"}:
                continue
            if len(row) < 2 or not row[1].strip():
                msg = f"{path}:{lineno}: expected 'path,label', got {','.join(row)!r}"
                if not skip_bad:
                    raise DataError(msg)
                report.skipped.append(msg)
                continue
            p = Path(row[0].strip())
            paths.append(str(p if p.is_absolute() else path.parent / p))
            labels.append(row[1].strip())
    if not paths:
        raise DataError(f"{path}: no 'path,label' rows")
    images = _decode_many(paths, size, channels, skip_bad, report, workers)
    if spec.keep is None and not spec.binary_negative:
        spec = ClassSpec(_default_order([spec.map_name(n) for n in labels]), spec.mapping)
    return _finish(images, labels, paths, spec, str(path), report)


def read_ferplus(folder: Path, *, spec: ClassSpec, size: int, channels: int, skip_bad: bool,
                 soft: bool, workers: int = 4) -> FaceArray:
    """FER+ ``label.csv`` (no header): file, box, ten vote counts. Faces whose majority is
    unknown or not-a-face are dropped; labels are the majority, ``soft`` adds votes/total."""
    report = LoadReport()
    label_file = folder / "label.csv"
    paths, labels, votes = [], [], []
    with open(label_file, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            try:
                v = np.array([float(x) for x in row[2:12]], np.float32)
                if v.size != 10:
                    raise ValueError(f"expected 10 vote counts, got {v.size}")
            except ValueError as exc:
                msg = f"{label_file}:{lineno}: {exc}"
                if not skip_bad:
                    raise DataError(msg) from None
                report.skipped.append(msg)
                continue
            top = int(np.argmax(v))
            if top >= 8:                       # majority unknown / not a face
                report.dropped_classes[FERPLUS_VOTES[top]] = \
                    report.dropped_classes.get(FERPLUS_VOTES[top], 0) + 1
                continue
            paths.append(str(folder / row[0]))
            labels.append(FERPLUS[top])
            votes.append(v[:8] / max(v[:8].sum(), 1e-6))
    images = _decode_many(paths, size, channels, skip_bad, report, workers)
    if spec.keep is None and not spec.binary_negative:
        spec = ClassSpec(FERPLUS, spec.mapping)
    soft_arr = np.stack(votes) if soft else None
    return _finish(images, labels, paths, spec, str(folder), report, soft_arr,
                   FERPLUS if soft else None)
