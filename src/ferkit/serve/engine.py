"""The models of one server process and the gate in front of them: analysers are built once
per (model, detector, tta, abstain) and reused; at most ``concurrency`` analyses run at once
and at most ``max_queue`` wait, so an overloaded server refuses (503) instead of queueing
without bound."""
from __future__ import annotations

import queue
import threading
from contextlib import asynccontextmanager, contextmanager

import anyio

from ferkit.analysis.pipeline import Analyzer, AnalyzerConfig
from ferkit.errors import ConfigError, ModelError
from ferkit.zoo.shipped import resolve, shipped


class Overloaded(Exception):
    """Raised when the queue is full; the app answers 503 with Retry-After."""


class Gate:
    """A bounded queue in front of a thread limiter."""

    def __init__(self, concurrency: int, max_queue: int):
        self.limit = concurrency + max_queue
        self.pending = 0
        self.limiter = anyio.CapacityLimiter(concurrency)

    @asynccontextmanager
    async def slot(self):
        if self.pending >= self.limit:
            raise Overloaded(f"{self.pending} requests in progress or queued")
        self.pending += 1
        try:
            yield self.limiter
        finally:
            self.pending -= 1

    async def run(self, fn, *args):
        async with self.slot() as limiter:
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


class AnalyzerPool:
    """Up to ``copies`` analysers per option set, each used by one thread at a time: the
    ONNX sessions load once per copy and are reused by every later request."""

    def __init__(self, default_model: str, detector: str, threads: int, max_pixels: int,
                 copies: int = 1):
        self.default_model, self.detector = default_model, detector
        self.threads, self.max_pixels, self.copies = threads, max_pixels, copies
        self.allowed = {r.name for r in shipped()}
        self._free: dict[tuple, queue.Queue] = {}
        self._made: dict[tuple, int] = {}
        self._lock = threading.Lock()
        resolve(default_model)          # fail at start-up, not on the first request

    def model_name(self, model: str | None) -> str:
        """Request names are limited to the shipped models and the server's own model
        (a request never opens a path of its choosing)."""
        name = model or self.default_model
        if name != self.default_model and name not in self.allowed:
            raise ModelError(f"unknown model {name!r}; choose one of "
                             f"{', '.join(sorted(self.allowed | {self.default_model}))}")
        return name

    def _build(self, key: tuple) -> Analyzer:
        if key[1] not in ("yunet", "haar", "none"):
            raise ConfigError(f"unknown detector {key[1]!r}; choose yunet, haar or none")
        cfg = AnalyzerConfig.build(model=key[0], detector=key[1], tta=key[2], abstain=key[3],
                                   threads=self.threads, max_pixels=self.max_pixels)
        return Analyzer(cfg)

    @contextmanager
    def lease(self, model: str | None = None, detector: str | None = None,
              tta: bool | None = None, abstain: str | None = None):
        """An analyser of these options for the caller's thread alone."""
        key = (self.model_name(model), detector or self.detector, tta, abstain)
        with self._lock:
            free = self._free.setdefault(key, queue.Queue())
            make = free.empty() and self._made.get(key, 0) < self.copies
            if make:
                self._made[key] = self._made.get(key, 0) + 1
        if make:
            try:
                analyzer = self._build(key)
            except Exception:
                with self._lock:
                    self._made[key] -= 1
                raise
        else:
            analyzer = free.get()
        try:
            yield analyzer
        finally:
            free.put(analyzer)

    def check(self, **options) -> None:
        """Build (or reuse) an analyser for these options: bad ones fail now."""
        with self.lease(**options):
            pass

    def loaded(self) -> list[str]:
        return sorted({k[0] for k, n in self._made.items() if n})
