"""`ferkit analyze` over many inputs: photos, folders, videos, webcams -> output folder.
Each input is analysed into its own partition (analysis/inputs.py); the partitions are then
merged into one faces.jsonl/faces.csv. Bad inputs are reported and skipped; outputs are
committed atomically, also on Ctrl-C; a killed run resumes where it stopped."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ferkit.analysis import writers
from ferkit.analysis.inputs import analyze_input, done_record, part_dir, plan
from ferkit.analysis.pipeline import Analyzer
from ferkit.errors import FerkitError
from ferkit.io import write_json

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    out: Path
    formats: tuple[str, ...] = ("jsonl", "csv")
    annotate: bool = False
    blur_faces: bool = False
    save_crops: bool = False
    stride: int = 1
    start: float = 0.0
    end: float | None = None
    alert: float | None = None
    alert_min_seconds: float = 2.0
    timeline_bin: float = 1.0
    show: bool = False
    progress: bool = True
    aggregate_only: bool = False      # no per-face rows: counts and timelines only
    on_frame: Callable[[str, int, int | None], None] | None = None  # (input, done, total)

    def check(self) -> None:
        if self.aggregate_only and self.save_crops:
            raise FerkitError("--aggregate-only stores no face data: drop --save-crops")
        if self.aggregate_only and self.annotate and not self.blur_faces:
            raise FerkitError("--aggregate-only with --annotate needs --blur-faces")


@dataclass
class RunSummary:
    analysed: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    faces: int = 0
    frames: int = 0
    alerts: list = field(default_factory=list)
    interrupted: bool = False
    photo_counts: list = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"analysed": len(self.analysed), "failed": self.failed,
                "no_face": self.no_face, "faces": self.faces, "frames": self.frames,
                "alerts": len(self.alerts), "interrupted": self.interrupted,
                "resumed": len(self.resumed)}


def run_analysis(analyzer: Analyzer, inputs: list, opts: RunOptions, *,
                 resume: bool = False) -> RunSummary:
    """The local engine: every input in turn, in this process. With ``resume``, inputs whose
    partition is complete (from an earlier, perhaps killed, run) are not analysed again."""
    from tqdm import tqdm
    opts.check()
    opts.out.mkdir(parents=True, exist_ok=True)
    todo = plan(inputs)
    records: dict[str, dict] = {}
    failed: list[dict] = []
    interrupted = False
    for item, name in tqdm(todo, desc="inputs", disable=not opts.progress or len(todo) < 2):
        rec = done_record(opts.out, item, name) if resume else None
        if rec is not None:
            records[name] = {**rec, "resumed": True}
            continue
        try:
            records[name] = analyze_input(analyzer, item, name, opts)
        except FerkitError as exc:
            log.error("%s", exc)
            failed.append({"input": str(item), "error": str(exc)})
        except KeyboardInterrupt:       # Ctrl-C: the normal end of a webcam session
            interrupted = True
            rec = done_record(opts.out, item, name, complete=False)
            if rec is not None:
                records[name] = rec
            log.warning("interrupted: keeping what was analysed so far")
            break
    return finish(opts, todo, records, failed, interrupted, analyzer.classes)


def finish(opts: RunOptions, todo: list, records: dict, failed: list, interrupted: bool,
           classes: list[str]) -> RunSummary:
    """Merge the partitions, in input order, into OUT/faces.jsonl and faces.csv; write the
    per-photo table, alerts and summary. Every engine ends here."""
    summary = RunSummary(failed=list(failed), interrupted=interrupted)
    done = [records[name] for _, name in todo if name in records]
    for rec in done:
        summary.analysed.append(rec["input"])
        summary.frames += rec["frames"]
        summary.faces += rec["faces"]
        summary.alerts += rec["alerts"]
        if rec.get("no_face"):
            summary.no_face.append(rec["input"])
        if rec.get("photo_counts"):
            summary.photo_counts.append(rec["photo_counts"])
        if rec.get("resumed"):
            summary.resumed.append(rec["input"])
    if not opts.aggregate_only:
        names = [rec["name"] for rec in done]
        writers.merge_rows(opts.out, [part_dir(opts.out, n) for n in names],
                           [f for f in opts.formats if f in ("jsonl", "csv")])
    if summary.photo_counts:
        writers.write_table(opts.out / "photos.csv", summary.photo_counts)
    if opts.alert is not None:
        write_json(opts.out / "alerts.json", summary.alerts)
    write_json(opts.out / "summary.json", summary.to_dict())
    return summary
