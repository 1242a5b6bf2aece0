"""Pack a FER+ folder (label.csv + 48-px PNGs) into one compressed uint8 array, and unpack it
again into the same layout, so a GPU lease can train on it (issue 16: the faces travel
under the 64-MiB limit; PNG is lossless, so unpacked pixels equal the originals).

    python scripts/pack_faces.py pack ../shared/datasets/ferplus OUT.npz
    python scripts/pack_faces.py unpack OUT.npz FOLDER
Faces whose majority vote is unknown / not-a-face are left out (the reader drops them)."""
from __future__ import annotations

import argparse
import csv
import io
import lzma
from pathlib import Path

import cv2
import numpy as np

SPLITS = ("FER2013Train", "FER2013Valid")


def pack(src: Path, out: Path) -> None:
    arrays = {}
    for split in SPLITS:
        rows = [r for r in csv.reader(open(src / split / "label.csv", newline="")) if r]
        rows = [r for r in rows if int(np.argmax([float(v) for v in r[2:12]])) < 8]
        faces = np.stack([cv2.imread(str(src / split / r[0]), cv2.IMREAD_GRAYSCALE)
                          for r in rows])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        arrays[f"{split}_faces"] = faces
        arrays[f"{split}_labels"] = np.frombuffer(buf.getvalue().encode(), np.uint8)
    raw = io.BytesIO()
    np.savez(raw, **arrays)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(lzma.compress(raw.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    tmp.replace(out)
    print(out, out.stat().st_size / 2**20, "MiB")


def unpack(src: Path, folder: Path) -> None:
    arrays = np.load(io.BytesIO(lzma.decompress(src.read_bytes())))
    for split in SPLITS:
        d = folder / split
        d.mkdir(parents=True, exist_ok=True)
        text = arrays[f"{split}_labels"].tobytes().decode()
        (d / "label.csv").write_text(text)
        names = [r[0] for r in csv.reader(io.StringIO(text)) if r]
        for name, face in zip(names, arrays[f"{split}_faces"]):
            cv2.imwrite(str(d / name), face)
        print(split, len(names), "faces")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verb", choices=["pack", "unpack"])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    a = ap.parse_args()
    (pack if a.verb == "pack" else unpack)(a.src, a.dst)


if __name__ == "__main__":
    main()
