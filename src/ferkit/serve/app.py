"""The FastAPI application: REST endpoints, the browser app's static files and, with a
survey database, the survey. Build it with ``create_app(ServeConfig(...))``."""
from __future__ import annotations

import hmac
import logging
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ferkit import __version__
from ferkit.analysis.media import TooLargeError
from ferkit.errors import FerkitError, ModelError
from ferkit.serve.analyze import AnalyzeOptions, analyze_uploads, annotated_jpeg
from ferkit.serve.config import STATIC, ServeConfig
from ferkit.serve.engine import AnalyzerPool, Gate, Overloaded
from ferkit.serve.jobs import RESULT_FILES, JobStore, new_state_dir
from ferkit.serve.uploads import BadRequest, read_uploads
from ferkit.zoo.shipped import shipped

log = logging.getLogger(__name__)


def error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(BadRequest)
    async def _bad(_req, exc: BadRequest):
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(Overloaded)
    async def _busy(_req, exc: Overloaded):
        return error(503, "overloaded", f"server busy ({exc}); retry shortly",
                     {"Retry-After": "1"})

    @app.exception_handler(FerkitError)
    async def _ferkit(_req, exc: FerkitError):
        if isinstance(exc, TooLargeError):
            return error(413, "too_large", str(exc))
        if isinstance(exc, ModelError):
            return error(404 if "unknown model" in str(exc) else 400, "bad_model", str(exc))
        return error(400, "bad_input", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, exc: RequestValidationError):
        msgs = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return error(422, "invalid_parameter", "; ".join(msgs))


def create_app(cfg: ServeConfig) -> FastAPI:
    cfg.validate()
    pool = AnalyzerPool(cfg.model, cfg.detector, cfg.threads, cfg.max_pixels, cfg.concurrency)
    gate = Gate(cfg.concurrency, cfg.max_queue)
    own_state = cfg.state_dir is None
    state = new_state_dir() if own_state else Path(cfg.state_dir)
    jobs = JobStore(AnalyzerPool(cfg.model, cfg.detector, cfg.threads, cfg.max_pixels),
                    state, cfg.job_ttl_s, cfg.max_jobs)

    @asynccontextmanager
    async def lifespan(_app):
        pool.check()                    # load the default model once per worker, up front
        yield
        jobs.close()
        if own_state:
            shutil.rmtree(state, ignore_errors=True)

    app = FastAPI(title="ferkit", version=__version__, lifespan=lifespan,
                  description="Facial expression recognition: faces, emotions and "
                              "uncertainty from photos and videos.")
    app.state.cfg, app.state.pool, app.state.gate, app.state.jobs = cfg, pool, gate, jobs
    _install_errors(app)

    @app.get("/health")
    def health():
        return {"status": "ok", "version": __version__, "default_model": cfg.model,
                "models_loaded": pool.loaded(), "in_flight": gate.pending,
                "survey": cfg.survey is not None, "auth": bool(cfg.api_key)}

    app.include_router(_v1_router(cfg, pool, gate, jobs))

    if cfg.survey is not None:
        from ferkit.serve.survey_api import survey_router
        app.include_router(survey_router(cfg.survey))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(str(STATIC / "index.html"))

    return app


def _auth(cfg: ServeConfig):
    """The dependency that checks the API key (X-API-Key or Bearer) when one is set."""
    def check(request: Request) -> None:
        if not cfg.api_key:
            return
        given = request.headers.get("x-api-key") or \
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), cfg.api_key.encode()):
            raise BadRequest(401, "missing or wrong API key (send it as X-API-Key)",
                             "unauthorized")
    return check


def _v1_router(cfg: ServeConfig, pool: AnalyzerPool, gate: Gate, jobs: JobStore) -> APIRouter:
    """/v1: models, photo analysis and video jobs, behind the API key."""
    r = APIRouter(prefix="/v1", dependencies=[Depends(_auth(cfg))])

    @r.get("/models")
    def models():
        return [m.summary() for m in shipped()]

    @r.post("/analyze")
    async def analyze(request: Request, opts: Annotated[AnalyzeOptions, Depends()]):
        uploads = await read_uploads(request, cfg.max_upload_bytes, cfg.max_images)
        if opts.annotate and len(uploads) != 1:
            raise BadRequest(400, "annotate=1 takes exactly one image")
        result = await gate.run(analyze_uploads, pool, uploads, opts)
        if opts.annotate:
            return Response(annotated_jpeg(result), media_type="image/jpeg")
        return result["response"]

    @r.post("/jobs", status_code=202)
    async def submit(request: Request, opts: Annotated[AnalyzeOptions, Depends()]):
        (name, data), = await read_uploads(request, cfg.max_upload_bytes, 1)
        job = await gate.run(jobs.submit, name, data, opts.analyzer_options())
        return {**job.to_dict(), "status_url": f"/v1/jobs/{job.id}",
                "result_url": f"/v1/jobs/{job.id}/result"}

    @r.get("/jobs/{job_id}")
    def job_status(job_id: str):
        return _job(jobs, job_id).to_dict()

    @r.get("/jobs/{job_id}/result")
    def job_result(job_id: str, format: str = "jsonl"):
        job = _job(jobs, job_id)
        if job.status != "done":
            raise BadRequest(409, f"job {job_id} is {job.status}"
                             + (f": {job.error}" if job.error else ""), "not_ready")
        data = jobs.result(job_id, format) if format in job.results else None
        if data is None:
            raise BadRequest(404, f"no {format!r} result; this job has "
                             f"{', '.join(sorted(job.results))}", "no_such_result")
        return Response(data, media_type=RESULT_FILES.get(format, ("", "application/json"))[1])

    return r


def _job(jobs: JobStore, job_id: str):
    job = jobs.get(job_id)
    if job is None:
        raise BadRequest(404, f"no job {job_id!r} (unknown, or deleted after its time to live)",
                         "no_such_job")
    return job


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: the options travel in the
    FERKIT_SERVE environment variable as JSON."""
    import json
    import os
    d = json.loads(os.environ.get("FERKIT_SERVE", "{}"))
    if d.get("survey"):
        d["survey"] = Path(d["survey"])
    return create_app(ServeConfig(**d))
