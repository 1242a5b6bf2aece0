"""Video jobs: each job is a folder in the server's private RAM folder (/dev/shm where there
is one), shared by its worker processes. The uploaded video is deleted as soon as the job
ends; its results are deleted ``ttl`` seconds after it finished, and the whole folder when
the server stops. One job runs at a time per worker process."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ferkit.analysis.media import MediaError, open_capture
from ferkit.analysis.run import RunOptions, run_analysis
from ferkit.io import write_json
from ferkit.serve.engine import AnalyzerPool, Overloaded

log = logging.getLogger(__name__)
RESULT_FILES = {"jsonl": ("faces.jsonl", "application/x-ndjson"),
                "csv": ("faces.csv", "text/csv"),
                "timeline": ("timeline_video.csv", "text/csv"),
                "tracks": ("tracks_video.csv", "text/csv"),
                "timeline_png": ("timeline_video.png", "image/png")}


@dataclass
class Job:
    id: str
    filename: str
    options: dict
    status: str = "queued"            # queued | running | done | failed
    frames_done: int = 0
    frames_total: int | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    error: str | None = None
    summary: dict | None = None
    results: list = field(default_factory=list)

    def to_dict(self) -> dict:
        total = self.frames_total
        return {"id": self.id, "filename": self.filename, "status": self.status,
                "frames_done": self.frames_done, "frames_total": total,
                "progress": round(self.frames_done / total, 4) if total else None,
                "error": self.error, "summary": self.summary, "options": self.options,
                "results": sorted(self.results), "created": self.created,
                "finished": self.finished}

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        keep = {k: d[k] for k in ("id", "filename", "options", "status", "frames_done",
                                  "frames_total", "created", "finished", "error", "summary",
                                  "results")}
        return cls(**keep)


def scratch_root() -> Path | None:
    """RAM-backed temporary space when the system has it (nothing reaches a disk)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else None


def new_state_dir() -> Path:
    """A private folder in RAM for the jobs of one server (shared by its workers)."""
    return Path(tempfile.mkdtemp(prefix="ferkit-jobs-", dir=scratch_root()))


class JobStore:
    """Jobs as folders under ``root`` (status.json, results/): every worker process of one
    server sees every job, whichever worker runs it."""

    def __init__(self, pool: AnalyzerPool, root: Path, ttl_s: float, max_jobs: int):
        self.pool, self.root, self.ttl, self.max_jobs = pool, Path(root), ttl_s, max_jobs
        self.root.mkdir(parents=True, exist_ok=True)
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferkit-job")

    def _dirs(self) -> list[Path]:
        return [p for p in self.root.iterdir() if p.is_dir() and (p / "status.json").exists()]

    def sweep(self) -> None:
        """Delete finished jobs older than the TTL (their results with them)."""
        now = time.time()
        for d in self._dirs():
            job = self._load(d)
            if job is not None and job.finished is not None and now - job.finished > self.ttl:
                shutil.rmtree(d, ignore_errors=True)

    def _load(self, d: Path) -> Job | None:
        try:
            return Job.from_dict(json.loads((d / "status.json").read_text()))
        except (OSError, ValueError, KeyError):
            return None

    def _save(self, job: Job) -> None:
        write_json(self.root / job.id / "status.json", job.to_dict())

    def submit(self, filename: str, data: bytes, options: dict) -> Job:
        """Check the video decodes, then queue it; MediaError for a video that does not."""
        self.sweep()
        if len(self._dirs()) >= self.max_jobs:
            raise Overloaded(f"{len(self._dirs())} video jobs kept (limit {self.max_jobs})")
        self.pool.check(**options)      # unknown model/detector: an error now, not later
        job = Job(uuid.uuid4().hex, filename, options)
        work = self.root / job.id
        work.mkdir()
        suffix = Path(filename).suffix.lower()
        video = work / f"video{suffix if suffix[1:].isalnum() else '.mp4'}"
        video.write_bytes(data)
        try:
            job.frames_total = _check_video(video, filename)
        except MediaError:
            shutil.rmtree(work, ignore_errors=True)
            raise
        self._save(job)
        self._exec.submit(self._run, job, work, video)
        return job

    def get(self, job_id: str) -> Job | None:
        self.sweep()
        if not job_id.isalnum():
            return None
        d = self.root / job_id
        return self._load(d) if d.is_dir() else None

    def result(self, job_id: str, key: str) -> bytes | None:
        p = self.root / job_id / "results" / key
        return p.read_bytes() if job_id.isalnum() and key.isidentifier() and p.is_file() else None

    def _run(self, job: Job, work: Path, video: Path) -> None:
        job.status = "running"
        self._save(job)
        try:
            last = [0.0]

            def progress(_src, done, total):
                job.frames_done, job.frames_total = done, total or job.frames_total
                if time.time() - last[0] > 0.25:
                    last[0] = time.time()
                    self._save(job)

            opts = RunOptions(work / "out", ("jsonl", "csv"), progress=False, on_frame=progress)
            with self.pool.lease(**job.options) as analyzer:
                summary = run_analysis(analyzer, [str(video)], opts)
            if summary.failed:
                raise MediaError(f"{job.filename}: {summary.failed[0]['error']}")
            job.summary = {**summary.to_dict(), "analysed": job.filename}
            (work / "results").mkdir()
            for key, (name, _) in RESULT_FILES.items():
                if (work / "out" / name).exists():
                    os.replace(work / "out" / name, work / "results" / key)
                    job.results.append(key)
            write_json(work / "results" / "summary", job.summary)
            job.results.append("summary")
            job.status = "done"
        except Exception as exc:  # reported to the client through the job's status
            log.warning("job %s failed: %s", job.id, exc)
            job.status, job.error = "failed", str(exc).replace(str(video), job.filename)
        finally:
            job.finished = time.time()
            video.unlink(missing_ok=True)
            shutil.rmtree(work / "out", ignore_errors=True)
            self._save(job)

    def close(self) -> None:
        self._exec.shutdown(wait=False, cancel_futures=True)


def _check_video(path: Path, name: str) -> int | None:
    """Frame count of a video whose first frame decodes; MediaError naming ``name`` if not."""
    import cv2
    try:
        cap = open_capture(str(path))
    except MediaError:
        raise MediaError(f"{name}: cannot be opened as a video") from None
    try:
        ok, img = cap.read()
        if not ok or img is None:
            raise MediaError(f"{name}: no frame could be decoded (empty, corrupt or "
                             f"unsupported video)")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return n if n > 0 else None
    finally:
        cap.release()
