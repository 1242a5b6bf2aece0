"""Analysis pipeline speed on short_hamilton_clip.mp4 (640x360, 275 frames): per-stage
milliseconds per frame (decode, detect, align, classify, track, write) and end-to-end
frames/s, each the median of 3 full passes, for: 1 thread; 2 threads sequential; 2 threads
with decode+detect in a second thread; and that plus --detect-every 2 (the default).

    python benchmarks/analyze_speed.py [--model default] [--suffix _amd]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))


CONFIGS = [
    {"threads": 1, "pipeline": False, "detect_every": 1},
    {"threads": 2, "pipeline": False, "detect_every": 1},
    {"threads": 2, "pipeline": True, "detect_every": 1},
    {"threads": 2, "pipeline": True, "detect_every": 2},      # the default
]


def one_pass(model: str, threads: int, **opts) -> dict:
    import cv2

    from ferkit.analysis.media import video_frames
    from ferkit.analysis.pipeline import Analyzer
    from ferkit.analysis.writers import FaceRowWriter
    cv2.setNumThreads(threads)
    an = Analyzer(model=model, threads=threads, **opts)
    with tempfile.TemporaryDirectory() as tmp:
        rows = FaceRowWriter(Path(tmp), an.classes)
        frames = video_frames(str(SHARED / "media" / "short_hamilton_clip.mp4"))
        decode = write = 0.0
        n = faces = 0
        t_all = time.perf_counter()

        def timed_frames():
            nonlocal decode
            while True:
                t = time.perf_counter()
                fr = next(frames, None)
                decode += time.perf_counter() - t
                if fr is None:
                    return
                yield fr
        for _, res in an.analyze_frames(timed_frames()):
            t = time.perf_counter()
            rows.write(res)
            write += time.perf_counter() - t
            n += 1
            faces += len(res.faces)
        t = time.perf_counter()
        rows.close()
        write += time.perf_counter() - t
        total = time.perf_counter() - t_all
    st = an.times
    ms = lambda s: 1000 * s / n
    overlapped = opts.get("pipeline", True) and threads >= 2   # stages overlap: busy times
    track = None if overlapped else total - decode - write - st.detect - st.align - st.classify
    return {"frames": n, "faces": faces, "fps": n / total,
            "stages_overlap": overlapped,
            "ms_per_frame": {"decode": ms(decode), "detect": ms(st.detect), "align": ms(st.align),
                             "classify": ms(st.classify), "track_other": None if track is None else ms(track),
                             "write": ms(write), "total": ms(total)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--suffix", default="", help="appended to the result file name, for a "
                    "second CPU's figures (e.g. _amd)")
    args = ap.parse_args()
    rows = []
    for conf in CONFIGS:
        runs = [one_pass(args.model, **conf) for _ in range(args.repeats)]
        med = sorted(runs, key=lambda r: r["fps"])[len(runs) // 2]
        med["fps_all_runs"] = [r["fps"] for r in runs]
        med["fps_median"] = statistics.median(r["fps"] for r in runs)
        med["config"] = conf
        med["threads"] = conf["threads"]
        rows.append(med)
        print(med, flush=True)
    write_result(f"analyze_speed_{args.model}{args.suffix}", {"video": "short_hamilton_clip.mp4",
                                                  "model": args.model, "rows": rows})


if __name__ == "__main__":
    main()
