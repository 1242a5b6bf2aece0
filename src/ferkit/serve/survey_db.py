"""The survey's SQLite database: the faces (image bytes, true label, group), participants
and their answers. WAL mode, one transaction per answer; a participant's face order is a
seeded shuffle, so a reload resumes at the first face they have not answered."""
from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from pathlib import Path

from ferkit.data.images import IMAGE_EXTS
from ferkit.errors import ConfigError, DataError
from ferkit.io import atomic_path

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE faces (id INTEGER PRIMARY KEY, grp TEXT NOT NULL, label TEXT NOT NULL,
                    source TEXT NOT NULL, image BLOB NOT NULL);
CREATE TABLE participants (id TEXT PRIMARY KEY, created REAL NOT NULL, seed INTEGER NOT NULL);
CREATE TABLE answers (participant TEXT NOT NULL REFERENCES participants(id),
                      face_id INTEGER NOT NULL REFERENCES faces(id),
                      answer TEXT, ms INTEGER, created REAL NOT NULL,
                      PRIMARY KEY (participant, face_id));
"""


def _pick(folder: Path, n: int, rng: random.Random) -> list[tuple[str, Path]]:
    """``n`` faces from a folder of class sub-folders, spread over the classes in turn."""
    per_class = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        rng.shuffle(files)
        if files:
            per_class[d.name] = files
    if not per_class:
        raise DataError(f"{folder}: no class sub-folders with images (expected "
                        f"{folder}/<label>/<image>)")
    picked: list[tuple[str, Path]] = []
    while len(picked) < n and any(per_class.values()):
        for label, files in per_class.items():
            if files and len(picked) < n:
                picked.append((label, files.pop()))
    return picked


def create_survey(groups: list[tuple[str, Path]], n: int, seed: int, out: Path,
                  classes: list[str] | None = None) -> dict:
    """Write a new survey of ``n`` faces split evenly over ``groups`` [(name, folder)]."""
    if n < 1:
        raise ConfigError("--n must be >= 1")
    for _, folder in groups:
        if not Path(folder).is_dir():
            raise DataError(f"{folder}: no such folder")
    rng = random.Random(seed)
    rows = []
    for i, (grp, folder) in enumerate(groups):
        share = n // len(groups) + (1 if i < n % len(groups) else 0)
        rows += [(grp, label, p) for label, p in _pick(Path(folder), share, rng)]
    rng.shuffle(rows)
    labels = classes or sorted({label for _, label, _ in rows})
    with atomic_path(out) as tmp:
        con = sqlite3.connect(tmp)
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("classes", json.dumps(labels)), ("seed", str(seed)), ("created", str(time.time())),
            ("groups", json.dumps([g for g, _ in groups]))])
        con.executemany("INSERT INTO faces (grp, label, source, image) VALUES (?, ?, ?, ?)",
                        [(g, lab, f"{lab}/{p.name}", p.read_bytes()) for g, lab, p in rows])
        con.commit()
        con.close()
    return {"faces": len(rows), "groups": {g: sum(r[0] == g for r in rows) for g, _ in groups},
            "classes": labels, "out": str(out)}


class SurveyDB:
    """Connection per call (safe across server threads); WAL so readers never block."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{path}: survey database not found")
        with self._con() as con:
            con.execute("PRAGMA journal_mode=WAL")
            try:
                self.classes = json.loads(con.execute(
                    "SELECT value FROM meta WHERE key='classes'").fetchone()[0])
            except (sqlite3.DatabaseError, TypeError):
                raise ConfigError(f"{path}: not a ferkit survey database") from None
            self.face_ids = [r[0] for r in con.execute("SELECT id FROM faces ORDER BY id")]

    def _con(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=10)
        con.execute("PRAGMA busy_timeout=10000")
        return con

    def new_participant(self) -> str:
        pid = uuid.uuid4().hex
        with self._con() as con:
            con.execute("INSERT INTO participants VALUES (?, ?, ?)",
                        (pid, time.time(), random.SystemRandom().randrange(2**31)))
        return pid

    def _seed(self, con, pid: str) -> int:
        row = con.execute("SELECT seed FROM participants WHERE id=?", (pid,)).fetchone()
        if row is None:
            raise KeyError(pid)
        return row[0]

    def next_face(self, pid: str) -> dict:
        """The participant's next unanswered face, or done."""
        with self._con() as con:
            order = list(self.face_ids)
            random.Random(self._seed(con, pid)).shuffle(order)
            answered = {r[0] for r in con.execute(
                "SELECT face_id FROM answers WHERE participant=?", (pid,))}
        left = [f for f in order if f not in answered]
        base = {"participant": pid, "answered": len(answered), "total": len(order),
                "classes": self.classes}
        return {**base, "done": True} if not left else {**base, "done": False, "face_id": left[0]}

    def answer(self, pid: str, face_id: int, answer: str | None, ms: int | None) -> None:
        """One transaction per answer; a repeat answer to the same face is refused."""
        if answer is not None and answer not in self.classes:
            raise ValueError(f"answer must be one of {', '.join(self.classes)} or null (skip)")
        if face_id not in set(self.face_ids):
            raise LookupError(f"no face {face_id}")
        with self._con() as con:
            self._seed(con, pid)
            con.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?)",
                        (pid, face_id, answer, ms, time.time()))

    def image(self, face_id: int) -> bytes | None:
        with self._con() as con:
            row = con.execute("SELECT image FROM faces WHERE id=?", (face_id,)).fetchone()
        return row[0] if row else None

    def faces(self) -> list[dict]:
        with self._con() as con:
            return [{"id": i, "group": g, "label": lab, "source": s, "image": img}
                    for i, g, lab, s, img in con.execute(
                        "SELECT id, grp, label, source, image FROM faces ORDER BY id")]

    def answers(self) -> list[dict]:
        with self._con() as con:
            return [{"participant": p, "face_id": f, "answer": a, "ms": ms}
                    for p, f, a, ms in con.execute(
                        "SELECT participant, face_id, answer, ms FROM answers "
                        "ORDER BY participant, created")]
