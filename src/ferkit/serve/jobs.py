"""Video jobs: the upload is decoded from a private folder in RAM (/dev/shm where there is
one) that is removed as soon as the job ends; results are kept in memory only and deleted
``ttl`` seconds after the job finished. One job runs at a time per server process."""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.media import MediaError, open_capture
from ..analysis.run import RunOptions, run_analysis
from .engine import AnalyzerPool, Overloaded

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
    files: dict = field(default_factory=dict, repr=False)   # key -> bytes

    def to_dict(self) -> dict:
        total = self.frames_total
        return {"id": self.id, "filename": self.filename, "status": self.status,
                "frames_done": self.frames_done, "frames_total": total,
                "progress": round(self.frames_done / total, 4) if total else None,
                "error": self.error, "summary": self.summary, "options": self.options,
                "results": sorted(self.files), "created": self.created,
                "finished": self.finished}


def scratch_root() -> Path | None:
    """RAM-backed temporary space when the system has it (nothing reaches a disk)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else None


class JobStore:
    def __init__(self, pool: AnalyzerPool, ttl_s: float, max_jobs: int):
        self.pool, self.ttl, self.max_jobs = pool, ttl_s, max_jobs
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferkit-job")

    def sweep(self) -> None:
        """Delete finished jobs older than the TTL."""
        now = time.time()
        with self._lock:
            for jid in [j.id for j in self.jobs.values()
                        if j.finished is not None and now - j.finished > self.ttl]:
                del self.jobs[jid]

    def submit(self, filename: str, data: bytes, options: dict) -> Job:
        """Check the video decodes, then queue it; MediaError for a video that does not."""
        self.sweep()
        with self._lock:
            if len(self.jobs) >= self.max_jobs:
                raise Overloaded(f"{len(self.jobs)} video jobs kept (limit {self.max_jobs})")
        self.pool.get(**options)        # unknown model/detector: an error now, not later
        work = Path(tempfile.mkdtemp(prefix="ferkit-job-", dir=scratch_root()))
        suffix = Path(filename).suffix.lower() or ".mp4"
        video = work / f"video{suffix if suffix.isalnum() or suffix[1:].isalnum() else '.mp4'}"
        video.write_bytes(data)
        try:
            total = _check_video(video, filename)
        except MediaError:
            shutil.rmtree(work, ignore_errors=True)
            raise
        job = Job(uuid.uuid4().hex, filename, options, frames_total=total)
        with self._lock:
            self.jobs[job.id] = job
        self._exec.submit(self._run, job, work, video)
        return job

    def get(self, job_id: str) -> Job | None:
        self.sweep()
        with self._lock:
            return self.jobs.get(job_id)

    def _run(self, job: Job, work: Path, video: Path) -> None:
        job.status = "running"
        try:
            analyzer, lock = self.pool.get(**job.options)

            def progress(_src, done, total):
                job.frames_done, job.frames_total = done, total or job.frames_total

            opts = RunOptions(work / "out", ("jsonl", "csv"), progress=False, on_frame=progress)
            with lock:
                summary = run_analysis(analyzer, [str(video)], opts)
            if summary.failed:
                raise MediaError(f"{job.filename}: {summary.failed[0]['error']}")
            job.summary = {**summary.to_dict(), "analysed": job.filename}
            for key, (name, _) in RESULT_FILES.items():
                p = work / "out" / name
                if p.exists():
                    job.files[key] = p.read_bytes()
            job.files["summary"] = json.dumps(job.summary).encode()
            job.status = "done"
        except Exception as exc:  # reported to the client through the job's status
            log.warning("job %s failed: %s", job.id, exc)
            job.status, job.error = "failed", str(exc).replace(str(video), job.filename)
        finally:
            job.finished = time.time()
            shutil.rmtree(work, ignore_errors=True)

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
