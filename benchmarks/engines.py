"""Issue 18's engine benchmark: files/s and frames/s of `ferkit analyze` with the local
engine and with Ray (1 and 2 actors) on a folder of photos and several copies of the video.
The Ray cluster is local (this machine, 2 CPUs) and started once before timing; its start-up
time is reported apart.

    python benchmarks/engines.py [--photos 40] [--videos 4]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))
MEDIA = SHARED / "media"


def make_inputs(root: Path, photos: int, videos: int) -> list[str]:
    srcs = sorted(MEDIA.glob("*.jpg"))
    out = []
    for i in range(photos):
        p = root / f"photo{i:03d}{srcs[i % len(srcs)].suffix}"
        shutil.copy(srcs[i % len(srcs)], p)
        out.append(str(p))
    for i in range(videos):
        p = root / f"video{i}.mp4"
        shutil.copy(MEDIA / "short_hamilton_clip.mp4", p)
        out.append(str(p))
    return out


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    s = fn()
    return time.perf_counter() - t, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--videos", type=int, default=4)
    args = ap.parse_args()
    import ray

    from ferkit.analysis.pipeline import Analyzer, AnalyzerConfig
    from ferkit.analysis.ray_engine import run_analysis_ray
    from ferkit.analysis.run import RunOptions, run_analysis
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        inputs = make_inputs(tmp / "in", args.photos, args.videos)
        cfg = AnalyzerConfig(threads=2)
        sec, s = timed(lambda: run_analysis(Analyzer(cfg), inputs,
                                            RunOptions(tmp / "local", progress=False)))
        rows.append(_row("local (1 process, 2 threads)", sec, s, len(inputs)))
        print(rows[-1], flush=True)
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - t0
        for n in (1, 2):
            one = AnalyzerConfig(threads=2 // n)
            sec, s = timed(lambda: run_analysis_ray(
                one, inputs, RunOptions(tmp / f"ray{n}", ("jsonl", "csv", "parquet"),
                                        progress=False), num_workers=n))
            rows.append(_row(f"ray, {n} actor(s) x {2 // n} thread(s)", sec, s, len(inputs)))
            print(rows[-1], flush=True)
        ray.shutdown()
    write_result("engines", {"setup": {"photos": args.photos, "videos": args.videos,
                                       "video_frames_each": 275, "cpus": 2,
                                       "ray_local_cluster_start_s": round(startup, 2)},
                             "rows": rows})


def _row(engine: str, sec: float, s, n_inputs: int) -> dict:
    return {"engine": engine, "seconds": round(sec, 2), "inputs": n_inputs,
            "files_per_s": round(n_inputs / sec, 2), "frames_per_s": round(s.frames / sec, 1),
            "frames": s.frames, "faces": s.faces, "failed": len(s.failed)}


if __name__ == "__main__":
    main()
