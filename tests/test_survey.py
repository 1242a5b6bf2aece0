"""The human-vs-model survey: the SQLite store through the real server's API, the report's
figures on scripted participants, and Fleiss' kappa on a published example."""
import sqlite3

import httpx
import numpy as np
import pytest
from conftest import FER
from serving import running_server

from ferkit.cli import main
from ferkit.serve.survey_report import cohen_kappa, fleiss_kappa


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    m = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                  [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                  [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(m) == pytest.approx(0.210, abs=1e-3)
    assert fleiss_kappa(np.array([[3, 0], [0, 3]])) == pytest.approx(1.0)
    a = np.array([0, 1, 2, 0, 1])
    assert cohen_kappa(a, a, 3) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def grouped_db(tmp_path_factory, small_fer):
    db = tmp_path_factory.mktemp("s") / "grouped.db"
    assert main(["survey", "create", "--faces", f"public={FER / 'val'}",
                 "--faces", f"own={small_fer / 'val'}", "--n", "20", "--seed", "3",
                 "--out", str(db)]) == 0
    return db


def test_create_splits_groups_and_refuses_overwrite(grouped_db, capsys):
    con = sqlite3.connect(grouped_db)
    groups = dict(con.execute("SELECT grp, COUNT(*) FROM faces GROUP BY grp").fetchall())
    labels = {r[0] for r in con.execute("SELECT label FROM faces")}
    assert groups == {"public": 10, "own": 10} and len(labels) == 7
    assert main(["survey", "create", "--faces", str(FER / "val"), "--out", str(grouped_db)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_participants_resume_answers_and_report(grouped_db, tmp_path):
    con = sqlite3.connect(grouped_db)
    truth = dict(con.execute("SELECT id, label FROM faces"))
    with running_server("--survey", str(grouped_db)) as url:
        api = url + "/survey/api"
        assert httpx.get(url + "/survey").status_code == 200
        p1 = httpx.post(api + "/participants").json()
        first = p1["face_id"]
        # a reload asks for the next face again: the same one, nothing answered yet
        again = httpx.get(f"{api}/participants/{p1['participant']}/next").json()
        assert again["face_id"] == first and again["answered"] == 0
        state, oracle_answers = p1, 0
        while not state["done"]:                    # participant 1 knows every label
            state = httpx.post(api + "/answers", json={
                "participant": p1["participant"], "face_id": state["face_id"],
                "answer": truth[state["face_id"]], "ms": 900}).json()
            oracle_answers += 1
        assert oracle_answers == 20 and state["answered"] == 20
        dup = httpx.post(api + "/answers", json={"participant": p1["participant"],
                                                  "face_id": first, "answer": "happy"})
        assert dup.status_code == 409
        p2 = httpx.post(api + "/participants").json()  # participant 2: always "happy", skips 2
        state = p2
        for i in range(12):
            state = httpx.post(api + "/answers", json={
                "participant": p2["participant"], "face_id": state["face_id"],
                "answer": None if i < 2 else "happy"}).json()
        bad = httpx.post(api + "/answers", json={"participant": p2["participant"],
                                                  "face_id": state["face_id"], "answer": "bored"})
        assert bad.status_code == 422
        assert httpx.post(api + "/answers", json={"participant": "nobody", "face_id": 1,
                                                   "answer": "happy"}).status_code == 404
        assert httpx.get(url + "/survey/faces/99999").status_code == 404
        assert httpx.get(url + f"/survey/faces/{first}").content == \
            con.execute("SELECT image FROM faces WHERE id=?", (first,)).fetchone()[0]
    out = tmp_path / "report"
    assert main(["survey", "report", str(grouped_db), "--model", "default", "--out", str(out)]) == 0
    import json
    rep = json.loads((out / "report.json").read_text())
    a = rep["all"]
    assert a["participants"] == 2 and a["answers"] == 20 + 10
    rows = {r["answered"]: r for r in a["participants_table"]}
    assert rows[20]["accuracy"] == 1.0 and rows[10]["skipped"] == 2
    happy_share = np.mean([v == "happy" for v in truth.values()])
    assert 0 <= rows[10]["accuracy"] <= 1 and happy_share > 0
    assert 0.3 < a["model_accuracy"] <= 1.0
    assert set(rep["groups"]) == {"public", "own"}
    assert rep["groups"]["public"]["faces"] == 10
    assert a["per_class"]["happy"]["faces"] == sum(v == "happy" for v in truth.values())
    for name in ("confusion_humans.png", "confusion_model.png", "participants_vs_model.png",
                 "confusion_humans_own.png", "participants.csv"):
        assert (out / name).stat().st_size > 0, name
