"""`ferkit preprocess`: raw photos -> an aligned face dataset that `ferkit train` reads.

Labelled input (RAW/<class>/*.jpg) keeps its class folders; unlabelled input (images at the
top level or in nested folders without a class meaning, with --unlabeled) becomes a flat
folder. Resumable: photos whose faces were already written are skipped (manifest.csv)."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ferkit.analysis import writers
from ferkit.analysis.align import align_face
from ferkit.analysis.detect import make_detector
from ferkit.analysis.media import load_image
from ferkit.data.images import IMAGE_EXTS
from ferkit.errors import DataError, FerkitError
from ferkit.io import write_json

log = logging.getLogger(__name__)


@dataclass
class PreprocessReport:
    photos: int = 0
    faces: int = 0
    skipped_done: int = 0
    no_face: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"photos": self.photos, "faces": self.faces, "skipped_done": self.skipped_done,
                "no_face": self.no_face, "failed": self.failed}


def preprocess(raw: str | Path, out: str | Path, *, size: int = 48, gray: bool = True,
               all_faces: bool = False, detector: str = "yunet", score_threshold: float = 0.7,
               min_face: int = 20, progress: bool = True) -> PreprocessReport:
    from tqdm import tqdm
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise DataError(f"{raw}: not a folder of photos")
    photos = sorted(p for p in raw.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not photos:
        raise DataError(f"{raw}: no images found")
    det = make_detector(detector, score_threshold=score_threshold, min_face=min_face)
    manifest = out / "manifest.csv"
    done = _read_manifest(manifest)
    out.mkdir(parents=True, exist_ok=True)
    rep = PreprocessReport()
    with open(manifest, "a", newline="") as mf:
        mw = csv.writer(mf)
        for p in tqdm(photos, desc="preprocess", disable=not progress):
            rel = p.relative_to(raw)
            if str(rel) in done:
                rep.skipped_done += 1
                continue
            rep.photos += 1
            try:
                img = load_image(p)
            except FerkitError as exc:
                rep.failed.append({"photo": str(p), "error": str(exc)})
                continue
            boxes = det.detect(img)
            if not boxes:
                rep.no_face.append(str(p))
                mw.writerow([str(rel), 0])
                continue
            if not all_faces:
                boxes = [max(boxes, key=lambda b: b.w * b.h)]
            sub = out / rel.parent
            for i, b in enumerate(boxes):
                crop = align_face(img, b, size, 1 if gray else 3).image
                suffix = f"_{i}" if all_faces else ""
                writers.write_image(sub / f"{p.stem}{suffix}.png", crop)
                rep.faces += 1
            mw.writerow([str(rel), len(boxes)])
            mf.flush()
    write_json(out / "preprocess_report.json", rep.to_dict())
    return rep


def _read_manifest(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with open(path, newline="") as fh:
        return {row[0] for row in csv.reader(fh) if row}
