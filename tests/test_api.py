"""The one-line API on real photos, the real video and real faces."""
import doctest
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import FER, ROOT, SHARED

import ferkit
from ferkit.errors import FerkitError, ModelError

MEDIA = SHARED / "media"
JSONL_KEYS = {"source", "frame", "time_s", "track_id", "x", "y", "w", "h", "det_score",
              "landmarks", "label", "confidence", "negative_score", "probs"}


def test_import_is_light_and_side_effect_free():
    code = ("import sys, ferkit; heavy = [m for m in ('torch', 'cv2', 'onnxruntime', 'numpy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_analyze_a_photo_a_folder_an_array_and_a_list():
    one = ferkit.analyze(MEDIA / "two_people.jpg")
    assert len(one.faces) == 2 and len(one.frames) == 1
    assert set(one.to_dict()["faces"][0]) == JSONL_KEYS
    img = cv2.imread(str(MEDIA / "two_people.jpg"))
    arr = ferkit.analyze(img)
    np.testing.assert_allclose(arr.faces[0].probs, one.faces[0].probs, atol=1e-6)
    both = ferkit.analyze([MEDIA / "two_people.jpg", str(MEDIA / "obama-480p.jpg")])
    assert len(both.faces) == 3
    df = both.to_dataframe()
    assert len(df) == 3 and {"label", "p_happy", "x"} <= set(df.columns)
    folder = ferkit.analyze(MEDIA, stride=10)
    assert {fr.source for fr in folder.frames} >= {str(MEDIA / "two_people.jpg")}
    assert any(fr.frame > 0 for fr in folder.frames)            # the video's frames


def test_analyze_video_tracks_and_bad_files(tmp_path):
    video = ferkit.analyze(MEDIA / "short_hamilton_clip.mp4", stride=5, model="fast")
    assert len(video.frames) == 55 and all(f.track_id is not None for f in video.faces)
    bad = tmp_path / "bad.jpg"
    bad.write_text("no image here")
    with pytest.raises(FerkitError, match="bad.jpg"):
        ferkit.analyze(bad)
    r = ferkit.analyze([bad, MEDIA / "obama-480p.jpg"], skip_bad=True)
    assert len(r.faces) == 1 and r.failed[0]["input"] == str(bad)


def test_load_model_predicts_on_real_faces():
    m = ferkit.load_model("default")
    assert m.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert m.card["metrics"]["val"]["accuracy"] > 0.6
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
             for p in sorted((FER / "val" / "happy").glob("*.jpg"))[:20]]
    p = m.predict(np.stack(faces))
    assert p.shape == (20, 7) and np.allclose(p.sum(1), 1, atol=1e-4)
    assert m.predict(faces[0]).shape == (1, 7)
    assert m.predict_labels(faces).count("happy") >= 14
    mc = m.predict_mc(faces[:4], passes=8)
    assert mc["mean"].shape == (4, 7) and (mc["mutual_info"] >= 0).all()
    with pytest.raises(ModelError):
        ferkit.load_model("no_such_model")


def test_api_docstring_examples_run(monkeypatch):
    import ferkit.api
    monkeypatch.chdir(ROOT)
    res = doctest.testmod(ferkit.api)
    assert res.attempted >= 3 and res.failed == 0
