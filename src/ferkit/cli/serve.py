"""`ferkit serve` (REST API + browser app + survey) and `ferkit survey create|report`.
Registered by cli.build_parser; FastAPI and uvicorn come with ``ferkit[serve]``."""
from __future__ import annotations

import json
from pathlib import Path

from ferkit.errors import ConfigError


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="REST API and browser app (needs ferkit[serve])",
                       description="Serve the REST API (/v1/analyze, /v1/jobs, /v1/models, "
                       "OpenAPI docs at /docs), the browser app at / and, with --survey, the "
                       "human-vs-model survey at /survey. Binds to loopback unless told "
                       "otherwise.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="default", help="default model of the requests")
    p.add_argument("--detector", default="yunet", choices=["yunet", "haar", "none"])
    p.add_argument("--workers", type=int, default=1, help="server processes (each loads "
                   "the models once)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per analysis")
    p.add_argument("--concurrency", type=int, default=2, help="analyses at once per worker")
    p.add_argument("--max-queue", type=int, default=8,
                   help="requests waiting per worker beyond those; more are answered 503")
    p.add_argument("--max-upload-mb", type=float, default=20.0)
    p.add_argument("--max-pixels", type=int, default=40_000_000)
    p.add_argument("--api-key", default=None, help="require this key (X-API-Key header)")
    p.add_argument("--job-ttl", type=float, default=3600.0,
                   help="seconds a finished video job's results are kept (in memory)")
    p.add_argument("--survey", type=Path, help="SURVEY.db from `ferkit survey create`")
    p.add_argument("--log-level", default="info")

    s = sub.add_parser("survey", help="human-vs-model survey: create a survey, report on it")
    ss = s.add_subparsers(dest="survey_cmd", required=True)
    c = ss.add_parser("create", help="sample faces into a new survey database")
    c.add_argument("--faces", action="append", required=True, metavar="[GROUP=]DIR",
                   help="a folder of <label>/<image> faces; repeat for groups, e.g. "
                   "--faces public=DIR1 --faces own=DIR2")
    c.add_argument("--n", type=int, default=100, help="faces in all (split over the groups)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--classes", help="answer choices, comma list (default: the folders' labels)")
    c.add_argument("--out", required=True, type=Path)
    r = ss.add_parser("report", help="people against the model on the survey's faces")
    r.add_argument("db", type=Path)
    r.add_argument("--model", default="default")
    r.add_argument("--out", required=True, type=Path)


def cmd_serve(a) -> int:
    import os

    import uvicorn

    from ferkit.serve.app import create_app
    from ferkit.serve.config import ServeConfig
    cfg = ServeConfig(a.host, a.port, a.model, a.detector, a.threads, a.concurrency,
                      a.max_queue, a.max_upload_mb, a.max_pixels, api_key=a.api_key,
                      job_ttl_s=a.job_ttl, survey=a.survey).validate()
    if a.workers < 1:
        raise ConfigError("--workers must be >= 1")
    if a.workers == 1:
        uvicorn.run(create_app(cfg), host=a.host, port=a.port, log_level=a.log_level)
        return 0
    import shutil

    from ferkit.serve.jobs import new_state_dir
    from ferkit.zoo.shipped import resolve
    resolve(cfg.model)                  # an unknown model fails here, not in every worker
    cfg.state_dir = str(new_state_dir())  # one jobs folder for all the workers
    d = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}
    os.environ["FERKIT_SERVE"] = json.dumps(d)
    try:
        uvicorn.run("ferkit.serve.app:app_from_env", factory=True, host=a.host, port=a.port,
                    workers=a.workers, log_level=a.log_level)
    finally:
        shutil.rmtree(cfg.state_dir, ignore_errors=True)
    return 0


def cmd_survey(a) -> int:
    if a.survey_cmd == "create":
        from ferkit.serve.survey_db import create_survey
        groups = []
        for spec in a.faces:
            name, sep, folder = spec.partition("=")
            groups.append((name, Path(folder)) if sep else (Path(spec).name, Path(spec)))
        if len({g for g, _ in groups}) != len(groups):
            raise ConfigError("--faces: give each group a distinct name (GROUP=DIR)")
        if a.out.exists():
            raise ConfigError(f"{a.out}: already exists; a survey is never overwritten")
        classes = [c.strip() for c in a.classes.split(",")] if a.classes else None
        print(json.dumps(create_survey(groups, a.n, a.seed, a.out, classes), indent=2))
        return 0
    from ferkit.serve.survey_report import survey_report
    rep = survey_report(a.db, a.model, a.out)
    s = rep["all"]
    print(json.dumps({k: s[k] for k in ("faces", "answers", "participants", "human_accuracy",
                                         "model_accuracy", "fleiss_kappa_humans",
                                         "cohen_kappa_human_model_mean")}, indent=2))
    print(f"report: {a.out}/report.json and plots in {a.out}")
    return 0
