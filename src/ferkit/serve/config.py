"""ServeConfig: every option of `ferkit serve`, with documented defaults."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ferkit.errors import ConfigError

STATIC = resources.files("ferkit.serve") / "static"   # the browser app's files (no CDN)


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"           # loopback unless told otherwise
    port: int = 8000
    model: str = "default"            # the model used when a request names none
    detector: str = "yunet"
    threads: int = 1                  # ONNX Runtime threads per analysis
    concurrency: int = 2              # analyses running at once in one worker process
    max_queue: int = 8                # requests waiting beyond those; more get 503
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000      # decompression-bomb cap on an image's pixel count
    max_images: int = 16              # images in one JSON (base64) request
    api_key: str | None = None        # required as X-API-Key (or Bearer) when set
    job_ttl_s: float = 3600.0         # finished video jobs (results) are deleted after this
    max_jobs: int = 4                 # video jobs kept (running + finished) at once
    survey: Path | None = None        # SURVEY.db from `ferkit survey create`
    state_dir: str | None = None      # jobs folder shared by the workers (default: a new
                                      # private folder in RAM, removed when the app stops)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def validate(self) -> "ServeConfig":
        checks = [
            (self.concurrency >= 1, "--concurrency must be >= 1"),
            (self.max_queue >= 0, "--max-queue must be >= 0"),
            (self.max_upload_mb > 0, "--max-upload-mb must be > 0"),
            (self.job_ttl_s > 0, "--job-ttl must be > 0"),
            (1 <= self.port <= 65535, "--port must be in 1..65535"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.survey is not None and not Path(self.survey).is_file():
            raise ConfigError(f"{self.survey}: survey database not found; make one with "
                              f"`ferkit survey create`")
        return self
