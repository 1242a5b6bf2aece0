"""Pack a face dataset into one lzma'd uint8 array, and unpack it again into the same layout,
so a GPU lease can train on it (issue 16: the faces travel under the 64-MiB limit).

Two layouts: FER+ (FER2013Train/ and FER2013Valid/, each label.csv + 48-px PNGs; faces whose
majority vote is unknown / not-a-face are left out, as the reader drops them) and class
folders (SPLIT/CLASS/*.jpg|png, e.g. ../shared/datasets/fer2013 with train/ and val/).
Faces are stored as decoded pixels and unpacked as PNG, so the trainer reads the same
pixels as from the originals (also where the other machine's JPEG decoder differs).

    python scripts/pack_faces.py pack ../shared/datasets/ferplus .devdata/ferplus.npz.xz
    python scripts/pack_faces.py unpack .devdata/ferplus.npz.xz /tmp/ferplus
"""
from __future__ import annotations

import argparse
import csv
import io
import lzma
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

FERPLUS_SPLITS = ("FER2013Train", "FER2013Valid")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def _text(rows) -> np.ndarray:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return np.frombuffer(buf.getvalue().encode(), np.uint8)


def _rows(arr: np.ndarray) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(arr.tobytes().decode())) if r]


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise SystemExit(f"{path}: not a readable image")
    return img


def pack_arrays(src: Path) -> dict[str, np.ndarray]:
    """Per split: ``SPLIT_faces`` (N, H, W) and ``SPLIT_rows`` (CSV text as bytes: the FER+
    label rows, or ``class,file`` for class folders)."""
    arrays = {}
    if (src / FERPLUS_SPLITS[0] / "label.csv").is_file():
        from ferkit.data import load_dataset
        for split in FERPLUS_SPLITS:
            faces = load_dataset(src / split)       # the faces the FER+ reader keeps
            by_name = {r[0]: r for r in csv.reader(open(src / split / "label.csv", newline=""))
                       if r}
            rows = [by_name[Path(p).name] for p in faces.paths]
            arrays[f"ferplus/{split}_faces"] = faces.images
            arrays[f"ferplus/{split}_rows"] = _text(rows)
        return arrays
    for split in sorted(p for p in src.iterdir() if p.is_dir()):
        rows = [[c.name, f.name] for c in sorted(split.iterdir()) if c.is_dir()
                for f in sorted(c.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
        arrays[f"folders/{split.name}_faces"] = np.stack(
            [_read(split / c / f) for c, f in rows])
        arrays[f"folders/{split.name}_rows"] = _text(rows)
    if not arrays:
        raise SystemExit(f"{src}: neither a FER+ folder nor SPLIT/CLASS/ image folders")
    return arrays


def pack(src: Path, out: Path) -> None:
    raw = io.BytesIO()
    np.savez(raw, **pack_arrays(src))
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(lzma.compress(raw.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    tmp.replace(out)
    print(out, f"{out.stat().st_size / 2**20:.1f} MiB")


def unpack(src: Path, folder: Path) -> None:
    arrays = np.load(io.BytesIO(lzma.decompress(src.read_bytes())))
    for key in (k for k in arrays.files if k.endswith("_faces")):
        layout, split = key[:-len("_faces")].split("/")
        rows, faces = _rows(arrays[key[:-len("faces")] + "rows"]), arrays[key]
        d = folder / split
        if layout == "ferplus":
            d.mkdir(parents=True, exist_ok=True)
            (d / "label.csv").write_bytes(arrays[key[:-len("faces")] + "rows"].tobytes())
            paths = [d / r[0] for r in rows]
        else:
            paths = [d / c / (Path(f).stem + ".png") for c, f in rows]
        for path, face in zip(paths, faces):
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), face)
        print(split, len(paths), "faces")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verb", choices=["pack", "unpack"])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    a = ap.parse_args()
    (pack if a.verb == "pack" else unpack)(a.src, a.dst)


if __name__ == "__main__":
    main()
