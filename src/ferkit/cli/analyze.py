"""`ferkit analyze` (local or Ray engine, resume) and `ferkit preprocess`. Registered by
cli.commands.build_parser."""
from __future__ import annotations

import sys

from ferkit.errors import FerkitError


def add_analyze(sub):
    p = sub.add_parser("analyze", help="every face in photos, folders, videos, webcams",
                       description="Detect, align and classify every face; write one row per "
                       "face to OUT/faces.jsonl and/or faces.csv.")
    p.add_argument("inputs", nargs="*", help="images, folders, videos, or - for paths on stdin")
    p.add_argument("--out", required=True)
    p.add_argument("--format", default=None,
                   help="any of jsonl, csv, parquet, comma-separated (default jsonl,csv; "
                   "parquet with --engine ray)")
    p.add_argument("--resume", action="store_true",
                   help="skip inputs whose results in OUT are complete (a killed run resumes)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray actor pool (ferkit[scale])")
    p.add_argument("--address", default=None,
                   help="Ray cluster: auto, ray://host:port (default: a local cluster)")
    p.add_argument("--num-workers", type=int, default=2, help="Ray actors (one model copy each)")
    p.add_argument("--model", default="default", help="default, fast, ferplus or a .onnx path")
    p.add_argument("--detector", default="yunet", choices=["yunet", "haar", "none"])
    p.add_argument("--score-threshold", type=float, default=0.7)
    p.add_argument("--min-face", type=int, default=10, help="smallest face side in pixels")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tta", choices=["on", "flip", "none"], default=None,
                   help="test-time augmentation (default: as the model card says)")
    p.add_argument("--webcam", type=int, default=None, metavar="INDEX")
    p.add_argument("--show", action="store_true", help="live window (needs a display)")
    p.add_argument("--stride", type=int, default=1, help="analyse every N-th video frame")
    p.add_argument("--start", type=float, default=0.0, help="video start (s)")
    p.add_argument("--end", type=float, default=None, help="video end (s)")
    p.add_argument("--smooth", choices=["ema", "none"], default="ema")
    p.add_argument("--ema-alpha", type=float, default=0.5)
    p.add_argument("--annotate", action="store_true", help="write annotated images/videos")
    p.add_argument("--blur-faces", action="store_true", help="pixelate faces in annotations")
    p.add_argument("--save-crops", action="store_true", help="store aligned face crops")
    p.add_argument("--aggregate-only", action="store_true",
                   help="no per-face rows: per-photo counts, timelines and summaries only")
    p.add_argument("--alert", type=float, default=None, metavar="THRESHOLD",
                   help="negative-score threshold for alert events")
    p.add_argument("--alert-min-seconds", type=float, default=2.0)
    p.add_argument("--timeline-bin", type=float, default=1.0, help="timeline bin (s)")
    p.add_argument("--max-pixels", type=float, default=60e6, help="refuse larger images")
    p.add_argument("--abstain", default=None, metavar="prob:T|entropy:T|mi:T",
                   help="answer 'uncertain' below top probability T, above entropy T, or "
                   "above MC-dropout mutual information T")
    p.add_argument("--mc-dropout", type=int, default=0, metavar="T",
                   help="T Monte-Carlo dropout passes per face: mean probabilities and "
                   "mutual information (one backbone pass, T cheap head passes)")
    p.add_argument("--detect-every", type=int, default=2, metavar="N",
                   help="videos: detect faces on every Nth frame, reuse boxes in between "
                   "(default 2, for real time on 2 cores; 1: every frame)")
    p.add_argument("--temporal", default=None, metavar="NPZ",
                   help="videos: classify each track's last frames with this sequence head "
                   "(from `ferkit temporal train`) instead of EMA smoothing")
    p.add_argument("--no-progress", action="store_true")


def cmd_analyze(a) -> int:
    from pathlib import Path

    from ferkit.analysis.media import expand_inputs
    from ferkit.analysis.pipeline import Analyzer, AnalyzerConfig
    from ferkit.analysis.run import RunOptions, run_analysis

    fmt = a.format or ("parquet" if a.engine == "ray" else "jsonl,csv")
    formats = tuple(f.strip() for f in fmt.split(",") if f.strip())
    if not formats or set(formats) - {"jsonl", "csv", "parquet"}:
        raise FerkitError(f"--format {fmt!r}: use jsonl, csv, parquet or a comma list of them")
    if a.num_workers < 1:
        raise FerkitError("--num-workers must be >= 1")
    inputs: list = expand_inputs(a.inputs)
    if a.webcam is not None:
        inputs.append(a.webcam)
    if not inputs:
        raise FerkitError("analyze: give at least one input (file, folder, -, or --webcam N)")
    cfg = AnalyzerConfig.build(model=a.model, detector=a.detector,
                               score_threshold=a.score_threshold, min_face=a.min_face,
                               threads=a.threads, tta=a.tta,
                               smooth=a.smooth, ema_alpha=a.ema_alpha,
                               max_pixels=int(a.max_pixels), abstain=a.abstain,
                               mc_dropout=a.mc_dropout, temporal=a.temporal,
                               detect_every=a.detect_every)
    opts = RunOptions(Path(a.out), formats, a.annotate, a.blur_faces, a.save_crops, a.stride,
                      a.start, a.end, a.alert, a.alert_min_seconds, a.timeline_bin, a.show,
                      not a.no_progress, a.aggregate_only)
    if a.engine == "ray":
        from ferkit.analysis.ray_engine import run_analysis_ray
        s = run_analysis_ray(cfg, inputs, opts, address=a.address, num_workers=a.num_workers,
                             resume=a.resume)
    else:
        s = run_analysis(Analyzer(cfg), inputs, opts, resume=a.resume)
    print(f"analysed {len(s.analysed)} input(s), {s.frames} frame(s), {s.faces} face(s); "
          f"failed {len(s.failed)}; photos without a face {len(s.no_face)}"
          + (f"; alerts {len(s.alerts)}" if a.alert is not None else "")
          + (f"; {len(s.resumed)} already done" if s.resumed else "") + f" -> {a.out}")
    for f in s.failed:
        print(f"  failed: {f['error']}", file=sys.stderr)
    return 0 if s.analysed else 1


def cmd_preprocess(a) -> int:
    from ferkit.analysis.preprocess import preprocess
    rep = preprocess(a.raw, a.out, size=a.size, gray=not a.color, all_faces=a.all_faces,
                     detector=a.detector, min_face=a.min_face, progress=not a.no_progress)
    print(f"{rep.faces} face(s) from {rep.photos} photo(s) (already done: {rep.skipped_done});"
          f" no face in {len(rep.no_face)}, unreadable {len(rep.failed)} -> {a.out}")
    return 0 if rep.faces or rep.skipped_done else 1
