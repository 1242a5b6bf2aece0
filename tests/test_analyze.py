"""End to end on ../shared/media through the real CLI, YuNet, ONNX Runtime and OpenCV."""
import csv
import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import SHARED

from ferkit.analysis.pipeline import Analyzer
from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.zoo.shipped import resolve

MEDIA = SHARED / "media"
VIDEO = MEDIA / "short_hamilton_clip.mp4"
JSONL_KEYS = {"source", "frame", "time_s", "track_id", "x", "y", "w", "h", "det_score",
              "landmarks", "label", "confidence", "negative_score", "probs"}


@pytest.fixture(scope="module")
def classes():
    return resolve("default").classes


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("video")
    assert main(["analyze", str(VIDEO), "--out", str(out), "--annotate", "--alert", "0.3",
                 "--alert-min-seconds", "0.5", "--no-progress"]) == 0
    return out


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_photos_face_counts_and_schema(tmp_path, classes):
    photos = [str(MEDIA / n) for n in ("two_people.jpg", "obama-480p.jpg",
                                       "obama_and_biden.jpg", "obama_partial_face.jpg")]
    assert main(["analyze", *photos, "--out", str(tmp_path), "--no-progress"]) == 0
    rows = _rows(tmp_path / "faces.jsonl")
    counts = {p: sum(r["source"] == p for r in rows) for p in photos}
    assert list(counts.values()) == [2, 1, 3, 1]
    for r in rows:
        assert set(r) == JSONL_KEYS
        assert r["frame"] == 0 and r["track_id"] is None
        assert set(r["probs"]) == set(classes)
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert r["label"] == max(r["probs"], key=r["probs"].get)
        assert len(r["landmarks"]) == 5
    with open(tmp_path / "faces.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == len(rows)
    assert {f"p_{c}" for c in classes} <= set(csv_rows[0])
    assert not list(tmp_path.glob("crops")) and not list(tmp_path.glob(".*part*"))


def test_video_full_pass_tracks_and_outputs(video_run, classes):
    rows = _rows(video_run / "faces.jsonl")
    frames = {r["frame"] for r in rows}
    assert max(frames) == 274                    # read to the end (275 frames)
    assert all(r["track_id"] is not None for r in rows)
    # the singer's close-up shot runs from frame 82 to 210: one track covers it
    by_track = {}
    for r in rows:
        if 82 <= r["frame"] <= 210:
            by_track.setdefault(r["track_id"], set()).add(r["frame"])
    assert max(len(v) for v in by_track.values()) >= 125
    cap = cv2.VideoCapture(str(video_run / "annotated" / "short_hamilton_clip.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, img = cap.read()
    assert ok and img.shape == (360, 640, 3) and n == 275
    tracks = list(csv.DictReader(open(video_run / "tracks_short_hamilton_clip.csv")))
    assert tracks and tracks[0]["dominant"] in classes
    timeline = list(csv.DictReader(open(video_run / "timeline_short_hamilton_clip.csv")))
    assert len(timeline) == 10                   # 9.2 s in 1 s bins
    assert (video_run / "timeline_short_hamilton_clip.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((video_run / "summary.json").read_text())
    assert summary["frames"] == 275 and summary["failed"] == []
    assert isinstance(json.loads((video_run / "alerts.json").read_text()), list)


def test_batch_reports_bad_inputs_and_carries_on(tmp_path, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(MEDIA / "obama-480p.jpg", inp / "a_good.jpg")
    (inp / "b_empty.jpg").write_bytes(b"")
    (inp / "c_text.png").write_text("not an image")
    jpg = (MEDIA / "two_people.jpg").read_bytes()
    (inp / "d_truncated.jpg").write_bytes(jpg[:5000])
    cv2.imwrite(str(inp / "e_noface.png"), np.full((200, 300, 3), 127, np.uint8))
    out = tmp_path / "out"
    rc = main(["analyze", str(inp), str(tmp_path / "missing.jpg"), "--out", str(out),
               "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    for name in ("b_empty.jpg", "c_text.png", "d_truncated.jpg", "missing.jpg"):
        assert name in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analysed"] == 2 and len(summary["failed"]) == 4
    assert summary["no_face"] == [str(inp / "e_noface.png")]
    assert len(_rows(out / "faces.jsonl")) == 1


def test_nothing_analysable_exits_nonzero(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    assert main(["analyze", str(tmp_path / "bad.jpg"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    assert main(["analyze", "--webcam", "93", "--out", str(tmp_path / "w"),
                 "--no-progress"]) == 1
    assert main(["analyze", str(VIDEO), "--out", str(tmp_path / "f"), "--format", "xml"]) == 2


def test_crops_only_when_asked_blur_and_stdin(tmp_path, monkeypatch):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{MEDIA / 'two_people.jpg'}\n"))
    assert main(["analyze", "-", "--out", str(tmp_path), "--save-crops", "--annotate",
                 "--blur-faces", "--format", "jsonl", "--no-progress"]) == 0
    crops = sorted((tmp_path / "crops").glob("*.png"))
    assert len(crops) == 2 and cv2.imread(str(crops[0]), cv2.IMREAD_UNCHANGED).shape == (48, 48)
    assert not (tmp_path / "faces.csv").exists()
    annotated = cv2.imread(str(tmp_path / "annotated" / "two_people.jpg"))
    from ferkit.analysis.detect import YuNetDetector
    assert YuNetDetector().detect(annotated) == []          # no face left to find


def test_python_api_video_generator_and_image(classes):
    an = Analyzer(model="default", threads=1)
    gen = an.analyze_video(str(VIDEO), stride=25)
    first = next(gen)
    assert first.frame == 0 and first.width == 640
    rest = list(gen)
    assert len(rest) == 10
    res = an.analyze_image(str(MEDIA / "two_people.jpg"))
    d = res.to_dict()
    assert len(d["faces"]) == 2 and d["faces"][0]["label"] in classes
    with pytest.raises(ConfigError, match="unknown analyzer option"):
        Analyzer(modle="default")
    paths = [str(MEDIA / "obama-480p.jpg"), str(MEDIA / "nope.jpg")]
    out = dict(an.analyze_paths(paths))
    assert len(out[paths[0]].faces) == 1 and "nope.jpg" in str(out[paths[1]])


def test_haar_and_no_detector_modes(tmp_path):
    if hasattr(cv2, "CascadeClassifier"):
        assert main(["analyze", str(MEDIA / "two_people.jpg"), "--detector", "haar",
                     "--out", str(tmp_path / "h"), "--no-progress"]) == 0
        rows = _rows(tmp_path / "h" / "faces.jsonl")
        assert len(rows) == 2 and rows[0]["landmarks"] is None
    crop = tmp_path / "crop.png"
    first = sorted((SHARED / "datasets/fer2013/val/happy").iterdir())[0]
    cv2.imwrite(str(crop), cv2.imread(str(first)))
    assert main(["analyze", str(crop), "--detector", "none", "--out", str(tmp_path / "n"),
                 "--no-progress"]) == 0
    (row,) = _rows(tmp_path / "n" / "faces.jsonl")
    assert (row["w"], row["h"]) == (48, 48)


def test_preprocess_builds_a_trainable_dataset_and_resumes(tmp_path):
    raw = tmp_path / "raw"
    for cls, names in (("happy", ["two_people.jpg", "obama-480p.jpg"]),
                       ("neutral", ["obama_partial_face.jpg"])):
        (raw / cls).mkdir(parents=True)
        for n in names:
            shutil.copy(MEDIA / n, raw / cls / n)
    cv2.imwrite(str(raw / "neutral" / "wall.png"), np.full((100, 100, 3), 90, np.uint8))
    out = tmp_path / "faces"
    assert main(["preprocess", str(raw), str(out), "--size", "48", "--no-progress"]) == 0
    pngs = sorted(out.rglob("*.png"))
    assert [p.parent.name for p in pngs] == ["happy", "happy", "neutral"]
    assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape == (48, 48) for p in pngs)
    rep = json.loads((out / "preprocess_report.json").read_text())
    assert rep["no_face"] == [str(raw / "neutral" / "wall.png")]
    assert main(["preprocess", str(raw), str(out), "--no-progress"]) == 0   # all done
    rep = json.loads((out / "preprocess_report.json").read_text())
    assert rep["skipped_done"] == 4 and rep["photos"] == 0
    from ferkit.data import load_dataset
    ds = load_dataset(out)
    assert ds.classes == ["happy", "neutral"] and len(ds) == 3
    assert main(["preprocess", str(raw), str(tmp_path / "all"), "--all-faces",
                 "--no-progress"]) == 0
    assert len(list((tmp_path / "all" / "happy").glob("two_people_*.png"))) == 2


def test_threaded_detection_gives_the_same_results_and_stops_cleanly():
    """Decode + detect in a second thread overlaps classification; results must be the
    same as the sequential path, and closing the generator early must stop the thread."""
    import threading
    out = {}
    for pipe in (False, True):
        an = Analyzer(model="fast", threads=2, pipeline=pipe)
        out[pipe] = [(r.frame, [(f.track_id, f.label, round(float(f.confidence), 5))
                                for f in r.faces])
                     for r in an.analyze_video(str(VIDEO), stride=3)]
    assert out[True] == out[False] and sum(len(f) for _, f in out[True]) > 100
    gen = Analyzer(model="fast", threads=2).analyze_video(str(VIDEO))
    for _ in range(3):
        next(gen)
    gen.close()
    assert not any(t.name == "ferkit-detect" for t in threading.enumerate())


def test_threaded_detection_reraises_errors_in_the_caller():
    from ferkit.analysis.media import Frame

    def frames():
        yield Frame("x", 0, 0.0, np.zeros((64, 64, 3), np.uint8))
        raise RuntimeError("camera unplugged")
    an = Analyzer(model="fast", threads=2)
    with pytest.raises(RuntimeError, match="camera unplugged"):
        list(an.analyze_frames(frames()))


def test_detect_every_reuses_boxes_between_detections():
    an = Analyzer(model="fast", threads=1, detect_every=3)
    res = list(an.analyze_video(str(VIDEO), end=1.0))
    assert len(res) == 30 and an.times.frames == 30          # 30 fps video, 1 s
    calls = []
    det = an.detector.detect
    an.detector.detect = lambda img: calls.append(1) or det(img)
    list(an.analyze_video(str(VIDEO), end=1.0))
    assert len(calls) == 11           # frames 0, 3, ..., 27 and the scene cut at frame 20
    for i in range(0, 27, 3):        # frames between detections carry the same boxes
        if res[i].faces and res[i + 1].faces:
            assert [f.box for f in res[i].faces] == [f.box for f in res[i + 1].faces]
    with pytest.raises(ConfigError, match="detect_every"):
        Analyzer(model="fast", detect_every=0)
