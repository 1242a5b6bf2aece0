import numpy as np

from ferkit.analysis.track import IoUTracker, SceneCut, TimelineBuilder
from ferkit.types import FaceBox, FaceResult, FrameResult

CLASSES = ["angry", "happy", "sad"]


def frame(i, boxes, probs=None):
    fr = FrameResult("v", i, i / 10, 640, 360)
    for j, (x, y, s) in enumerate(boxes):
        p = np.array(probs[j] if probs else [0.1, 0.8, 0.1])
        fr.faces.append(FaceResult("v", i, i / 10, FaceBox(x, y, s, s, 0.9), p, CLASSES,
                                   float(p[[0, 2]].sum())))
    return fr


def test_ids_stable_across_motion_and_missed_detections():
    tr = IoUTracker(max_missed=3, negative_idx=(0, 2))
    ids = []
    for i in range(30):
        boxes = [(100 + 3 * i, 50, 60), (400 - 2 * i, 80, 40)]
        if i in (10, 11):                     # the first face is missed twice
            boxes = boxes[1:]
        ids.append([f.track_id for f in tr.update(frame(i, boxes)).faces])
    first = {row[0] for i, row in enumerate(ids) if i not in (10, 11)}
    second = {row[-1] for row in ids}
    assert first == {1} and second == {2}


def test_new_person_gets_a_new_id_and_far_jump_is_not_matched():
    tr = IoUTracker()
    tr.update(frame(0, [(100, 100, 50)]))
    out = tr.update(frame(1, [(100, 100, 50), (500, 100, 50)]))
    assert [f.track_id for f in out.faces] == [1, 2]
    out = tr.update(frame(2, [(300, 250, 120)]))       # different size and place
    assert out.faces[0].track_id == 3


def test_ema_smoothing_and_negative_score():
    tr = IoUTracker(alpha=0.5, negative_idx=(0, 2))
    tr.update(frame(0, [(10, 10, 50)], [[0.0, 1.0, 0.0]]))
    f = tr.update(frame(1, [(12, 10, 50)], [[1.0, 0.0, 0.0]])).faces[0]
    np.testing.assert_allclose(f.probs, [0.5, 0.5, 0.0])
    assert f.negative_score == 0.5
    off = IoUTracker(alpha=1.0)
    off.update(frame(0, [(10, 10, 50)], [[0.0, 1.0, 0.0]]))
    g = off.update(frame(1, [(12, 10, 50)], [[1.0, 0.0, 0.0]])).faces[0]
    np.testing.assert_allclose(g.probs, [1.0, 0.0, 0.0])


def test_scene_cut_detector():
    cut = SceneCut()
    dark = np.full((360, 640, 3), 20, np.uint8)
    assert not cut(dark) and not cut(dark + 2)
    assert cut(np.full((360, 640, 3), 200, np.uint8))


def test_timeline_tracks_and_alerts():
    tl = TimelineBuilder(CLASSES, bin_s=1.0, alert_threshold=0.6, alert_min_s=0.5)
    tr = IoUTracker(alpha=1.0, negative_idx=(0, 2))
    for i in range(30):                       # 3 s; sad from 1.0 s to 2.0 s
        p = [0.05, 0.1, 0.85] if 10 <= i <= 20 else [0.05, 0.9, 0.05]
        tl.add(tr.update(frame(i, [(100, 100, 50)], [p])))
    tl.finish()
    (track,) = tl.track_rows()
    assert track["dominant"] == "happy" and track["frames"] == 30
    rows = tl.timeline_rows()
    assert [r["t_start_s"] for r in rows] == [0.0, 1.0, 2.0]
    assert rows[1]["share_sad"] == 1.0 and rows[0]["share_happy"] == 1.0
    assert len(tl.alerts) == 1 and tl.alerts[0]["start_s"] == 1.0
    assert tl.alerts[0]["duration_s"] == 1.0
