"""The survey's routes: the participant page, one face at a time, answers into SQLite."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from ferkit.serve.config import STATIC
from ferkit.serve.survey_db import SurveyDB
from ferkit.serve.uploads import BadRequest


class Answer(BaseModel):
    participant: str
    face_id: int
    answer: str | None = None          # None: skipped
    ms: int | None = None              # time to answer, from the page


def survey_router(path: Path) -> APIRouter:
    db = SurveyDB(path)
    r = APIRouter(prefix="/survey")

    @r.get("", include_in_schema=False)
    def page():
        return FileResponse(str(STATIC / "survey.html"))

    @r.post("/api/participants", status_code=201)
    def join():
        pid = db.new_participant()
        return db.next_face(pid)

    @r.get("/api/participants/{pid}/next")
    def next_face(pid: str):
        try:
            return db.next_face(pid)
        except KeyError:
            raise BadRequest(404, f"no participant {pid!r}", "no_such_participant") from None

    @r.post("/api/answers", status_code=201)
    def answer(a: Answer):
        try:
            db.answer(a.participant, a.face_id, a.answer, a.ms)
        except KeyError:
            raise BadRequest(404, f"no participant {a.participant!r}",
                             "no_such_participant") from None
        except LookupError as exc:
            raise BadRequest(404, str(exc), "no_such_face") from None
        except ValueError as exc:
            raise BadRequest(422, str(exc), "bad_answer") from None
        except sqlite3.IntegrityError:
            raise BadRequest(409, f"face {a.face_id} was already answered",
                             "already_answered") from None
        return db.next_face(a.participant)

    @r.get("/faces/{face_id}")
    def face(face_id: int):
        data = db.image(face_id)
        if data is None:
            raise BadRequest(404, f"no face {face_id}", "no_such_face")
        return Response(data, media_type="image/png" if data[:4] == b"\x89PNG" else "image/jpeg",
                        headers={"Cache-Control": "no-store"})

    return r
