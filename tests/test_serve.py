"""`ferkit serve` as a real uvicorn process on loopback: the REST API, video jobs, the
hostile inputs (each a 4xx and a server still answering), overload (503), the API key."""
import base64
import concurrent.futures as cf
import json
import struct
import time
import zlib

import cv2
import httpx
import numpy as np
import pytest
from conftest import FER, SHARED
from serving import running_server

from ferkit.analysis.pipeline import Analyzer
from ferkit.cli import main

MEDIA = SHARED / "media"
PHOTO = MEDIA / "two_people.jpg"
VIDEO = MEDIA / "short_hamilton_clip.mp4"
JSONL_KEYS = {"source", "frame", "time_s", "track_id", "x", "y", "w", "h", "det_score",
              "landmarks", "label", "confidence", "negative_score", "probs"}


@pytest.fixture(scope="module")
def survey_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("survey") / "survey.db"
    assert main(["survey", "create", "--faces", f"public={FER / 'val'}", "--n", "14",
                 "--seed", "1", "--out", str(db)]) == 0
    return db


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("server_tmp")


@pytest.fixture(scope="module")
def server(survey_db, scratch):
    with running_server("--survey", str(survey_db), "--max-upload-mb", "1",
                        tmpdir=scratch) as url:
        yield url


def post_file(url, path_or_bytes, name="x.jpg", **params):
    data = path_or_bytes.read_bytes() if hasattr(path_or_bytes, "read_bytes") else path_or_bytes
    return httpx.post(url, params=params, files={"file": (name, data)}, timeout=60)


def test_health_models_and_openapi(server):
    h = httpx.get(server + "/health").json()
    assert h["status"] == "ok" and h["models_loaded"] == ["default"]
    names = [m["name"] for m in httpx.get(server + "/v1/models").json()]
    assert names[:3] == ["default", "default_fp32", "fast"]
    spec = httpx.get(server + "/openapi.json").json()
    assert {"/v1/analyze", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/models"} <= set(spec["paths"])
    assert httpx.get(server + "/docs").status_code == 200


def test_analyze_gives_the_local_pipelines_faces(server):
    r = post_file(server + "/v1/analyze", PHOTO, "two_people.jpg")
    assert r.status_code == 200
    body = r.json()
    local = Analyzer(model="default").analyze_image(PHOTO, source="two_people.jpg")
    assert len(body["faces"]) == len(local.faces) == 2
    for got, want in zip(body["faces"], [f.to_dict() for f in local.faces]):
        assert set(got) == JSONL_KEYS
        assert got["label"] == want["label"]
        assert got["probs"] == pytest.approx(want["probs"], abs=2e-4)
        assert (got["x"], got["y"]) == pytest.approx((want["x"], want["y"]), abs=0.2)


def test_analyze_json_base64_batch_and_options(server):
    imgs = [base64.b64encode((MEDIA / n).read_bytes()).decode()
            for n in ("two_people.jpg", "obama-480p.jpg")]
    r = httpx.post(server + "/v1/analyze", params={"model": "fast", "tta": "false"},
                   json={"images": [{"name": "a.jpg", "data": imgs[0]}, imgs[1]]}, timeout=60)
    body = r.json()
    assert r.status_code == 200 and body["model"] == "fast" and body["tta"] is False
    assert [len(i["faces"]) for i in body["images"]] == [2, 1]
    assert [i["source"] for i in body["images"]] == ["a.jpg", "image1"]
    r = httpx.post(server + "/v1/analyze", params={"abstain": "prob:0.99"}, json=[imgs[0]],
                   timeout=60)
    assert {f["label"] for f in r.json()["faces"]} == {"uncertain"}
    assert "default" in httpx.get(server + "/health").json()["models_loaded"]


def test_annotate_returns_the_annotated_image(server):
    r = post_file(server + "/v1/analyze", PHOTO, annotate="1", blur="1")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    orig = cv2.imread(str(PHOTO))
    assert img.shape == orig.shape
    assert np.abs(img.astype(int) - orig).mean() > 1       # boxes, labels, pixelated faces


def test_video_job_progress_and_results(server, scratch):
    r = post_file(server + "/v1/jobs", VIDEO, "clip.mp4")
    assert r.status_code == 202
    job = r.json()
    assert job["frames_total"] == 275
    seen, deadline = [], time.time() + 240
    while True:
        s = httpx.get(server + job["status_url"]).json()
        seen.append(s["frames_done"])
        if s["status"] in ("done", "failed") or time.time() > deadline:
            break
        time.sleep(0.3)
    assert s["status"] == "done", s
    assert s["frames_done"] == 275 and seen == sorted(seen)
    rows = [json.loads(x) for x in httpx.get(server + job["result_url"],
                                             params={"format": "jsonl"}).text.splitlines()]
    assert len(rows) == s["summary"]["faces"] > 0
    assert all(r["track_id"] is not None for r in rows)
    tl = httpx.get(server + job["result_url"], params={"format": "timeline"}).text
    assert tl.startswith("t_start_s,frames,faces,negative,share_angry")
    assert len(tl.splitlines()) > 5
    assert httpx.get(server + job["result_url"], params={"format": "pdf"}).status_code == 404
    # the video is gone once the job ended (results stay in RAM until their time to live)
    from pathlib import Path
    for root in (scratch, Path("/dev/shm")):
        assert not list(root.glob(f"ferkit-jobs-*/{job['id']}/video*"))
    assert all(p.stat().st_size < 1024 for p in scratch.rglob("*") if p.is_file())


def _bomb_png(w, h) -> bytes:
    """A real PNG header claiming w x h pixels (the data never needs to be inflated)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


HOSTILE = [
    ("not an image", lambda: b"this is plain text, not a picture", "notes.jpg", 400, "decodable"),
    ("truncated jpeg", lambda: PHOTO.read_bytes()[:5000], "cut.jpg", 400, "truncated"),
    ("decompression bomb header", lambda: _bomb_png(100_000, 100_000), "bomb.png", 413, "cap"),
    ("real 48-MP png of a few kB",
     lambda: cv2.imencode(".png", np.zeros((6000, 8000), np.uint8))[1].tobytes(), "big.png",
     413, "cap"),
    ("over the upload limit", lambda: np.random.default_rng(0).bytes(1_200_000), "huge.jpg", 413,
     "limit"),
    ("empty file", lambda: b"", "empty.jpg", 400, "no data"),
]


@pytest.mark.parametrize("case,make,name,status,words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_photo_is_a_4xx_and_the_server_still_answers(server, case, make, name, status,
                                                            words):
    r = post_file(server + "/v1/analyze", make(), name)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"]
    if status != 413 or "limit" not in words:
        assert name in err["message"]
    assert post_file(server + "/v1/analyze", PHOTO).status_code == 200


@pytest.mark.parametrize("params,files,status", [
    ({"model": "../../etc/passwd"}, True, 404),
    ({"detector": "sift"}, True, 400),
    ({"tta": "maybe"}, True, 422),
    ({"abstain": "prob:x"}, True, 400),
    ({}, False, 415),
])
def test_bad_options_are_4xx(server, params, files, status):
    if files:
        r = post_file(server + "/v1/analyze", PHOTO, **params)
    else:
        r = httpx.post(server + "/v1/analyze", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == status and "error" in r.json()
    assert httpx.get(server + "/health").status_code == 200


def test_video_that_does_not_decode_and_unknown_jobs(server):
    r = post_file(server + "/v1/jobs", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000, "broken.mp4")
    assert r.status_code == 400 and "broken.mp4" in r.json()["error"]["message"]
    assert httpx.get(server + "/v1/jobs/nope").status_code == 404
    assert httpx.get(server + "/v1/jobs/nope/result").status_code == 404
    assert httpx.get(server + "/health").status_code == 200


def test_overload_answers_503_with_retry_after_and_api_key(tmp_path):
    with running_server("--concurrency", "1", "--max-queue", "0", "--api-key", "s3cret",
                        "--threads", "1") as url:
        assert post_file(url + "/v1/analyze", PHOTO).status_code == 401
        assert httpx.get(url + "/v1/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert httpx.get(url + "/health").status_code == 200     # health needs no key
        big = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(PHOTO)), None, fx=3, fy=3))[1]

        def one(_):
            return httpx.post(url + "/v1/analyze", headers={"X-API-Key": "s3cret"},
                              files={"file": ("big.jpg", big.tobytes())}, timeout=60)
        codes = []
        for _ in range(3):
            with cf.ThreadPoolExecutor(12) as ex:
                rs = list(ex.map(one, range(12)))
            codes += [r.status_code for r in rs]
            busy = [r for r in rs if r.status_code == 503]
            if busy:
                break
        assert set(codes) <= {200, 503} and 200 in codes and 503 in codes
        assert busy[0].headers["retry-after"] == "1"
        assert busy[0].json()["error"]["code"] == "overloaded"
        assert one(0).status_code == 200                          # recovers when idle


def test_several_workers_share_the_jobs_and_clean_up():
    from pathlib import Path
    before = set(Path("/dev/shm").glob("ferkit-jobs-*"))
    with running_server("--workers", "2") as url:
        assert post_file(url + "/v1/analyze", PHOTO).status_code == 200
        job = post_file(url + "/v1/jobs", VIDEO, "clip.mp4").json()
        # new connections land on either worker; every one of them knows the job
        codes = [httpx.get(url + job["status_url"]).status_code for _ in range(20)]
        assert codes == [200] * 20
    assert set(Path("/dev/shm").glob("ferkit-jobs-*")) <= before


def test_pool_leases_one_copy_per_thread_up_to_its_size():
    from ferkit.errors import ModelError
    from ferkit.serve.engine import AnalyzerPool
    pool = AnalyzerPool("fast", "none", 1, 10_000_000, copies=2)
    with pool.lease() as a, pool.lease() as b:
        assert a is not b
    with pool.lease() as c:
        assert c is a or c is b
    assert pool.loaded() == ["fast"]
    with pytest.raises(ModelError, match="unknown model"):
        pool.check(model="/etc/passwd")
