"""Issue 6's sequence model: the GRU head over per-frame embeddings against per-frame
classification and smoothing. Accuracy on val clips synthesised from labelled stills (no
labelled video exists here), and on the real Hamilton clip (unlabelled) the stability of
each track's label: label changes per second of track.

    python benchmarks/temporal.py [--model fast]
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))


def flips_per_second(results, fps: float) -> dict:
    labels = defaultdict(list)
    for r in results:
        for f in r.faces:
            labels[f.track_id].append(f.label)
    frames = sum(len(v) for v in labels.values())
    changes = sum(sum(a != b for a, b in zip(v, v[1:])) for v in labels.values())
    return {"tracks": len(labels), "track_frames": frames,
            "label_changes_per_track_second": changes / (frames / fps) if frames else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fast")
    ap.add_argument("--out", default=str(ROOT / "runs" / "temporal"))
    args = ap.parse_args()
    from ferkit.analysis.pipeline import Analyzer
    from ferkit.train.sequence import train_temporal
    rep = train_temporal(args.model, SHARED / "datasets" / "fer2013", args.out)
    import cv2
    video = str(SHARED / "media" / "short_hamilton_clip.mp4")
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    stab = {}
    for name, kw in (("per_frame", {"smooth": "none"}), ("ema_0.5", {"smooth": "ema"}),
                     ("gru", {"temporal": f"{args.out}/temporal.npz"})):
        an = Analyzer(model=args.model, threads=2, **kw)
        stab[name] = flips_per_second(list(an.analyze_video(video)), fps)
        print(name, stab[name], flush=True)
    write_result("temporal", {"model": args.model, "synthetic_val_clips": rep,
                              "hamilton_clip_stability": stab})


if __name__ == "__main__":
    main()
