import shutil

import numpy as np
import pytest
from conftest import CLASSES, FER, FERPLUS, real_faces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferkit.data import load_dataset
from ferkit.data.images import read_face
from ferkit.errors import DataError
from ferkit.labels import ClassSpec


def test_folder_split_matches_published_counts():
    val = load_dataset(FER, "val")
    assert len(val) == 3589
    assert val.classes == list(CLASSES)
    assert val.counts() == {"angry": 467, "disgust": 56, "fear": 496, "happy": 895,
                            "sad": 653, "surprise": 415, "neutral": 607}
    assert val.images.shape == (3589, 48, 48) and val.images.dtype == np.uint8


def test_resize_and_colour_on_load(small_fer):
    ds = load_dataset(small_fer, "val", size=96, channels=3)
    assert ds.images.shape[1:] == (96, 96, 3)


def test_csv_reader_splits_by_usage_and_matches_images(fer_csv):
    tr = load_dataset(fer_csv, "train")
    va = load_dataset(fer_csv, "val")
    assert len(tr) == 21 and len(va) == 21
    assert tr.classes == list(CLASSES)
    first = real_faces("train", "angry", 1)[0]
    np.testing.assert_array_equal(tr.images[0], read_face(first, 48, 1))


def test_csv_wrong_pixel_count_names_the_line(tmp_path, fer_csv):
    bad = tmp_path / "bad.csv"
    lines = fer_csv.read_text().splitlines()
    lines[3] = "2,1 2 3,Training"
    bad.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"bad\.csv:4: pixels has 3 values"):
        load_dataset(bad, "train")
    ds = load_dataset(bad, "train", skip_bad=True)
    assert len(ds) == 20 and "bad.csv:4" in ds.report.skipped[0]


def test_corrupt_and_empty_images_are_named_or_skipped(tmp_path):
    for cls in ("happy", "sad"):
        (tmp_path / cls).mkdir()
        for p in real_faces("val", cls, 3):
            shutil.copy(p, tmp_path / cls / p.name)
    (tmp_path / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "happy" / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"(broken\.jpg|empty\.png)"):
        load_dataset(tmp_path)
    ds = load_dataset(tmp_path, skip_bad=True)
    assert len(ds) == 6 and len(ds.report.skipped) == 2


def test_empty_class_folder_is_an_error(tmp_path):
    (tmp_path / "happy").mkdir()
    shutil.copy(real_faces("val", "happy", 1)[0], tmp_path / "happy")
    (tmp_path / "sad").mkdir()
    with pytest.raises(DataError, match="sad: class folder has no images"):
        load_dataset(tmp_path)


def test_label_file_with_unknown_class_counted(tmp_path):
    rows = ["path,label"]
    for cls, name in (("happy", "Happiness"), ("sad", "sadness"), ("fear", "fear")):
        for p in real_faces("val", cls, 2):
            rows.append(f"{p},{name}")
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    ds = load_dataset(tmp_path / "labels.csv", spec=ClassSpec(keep=("happy", "sad")))
    assert ds.classes == ["happy", "sad"] and len(ds) == 4
    assert ds.report.dropped_classes == {"fear": 2}


def test_label_not_in_taxonomy_is_an_error(tmp_path):
    rows = [f"{p},happy" for p in real_faces("val", "happy", 2)]
    (tmp_path / "l.csv").write_text("\n".join(rows))
    with pytest.raises(DataError, match="no face belongs to the selected classes"):
        load_dataset(tmp_path / "l.csv", spec=ClassSpec(keep=("angry", "sad")))


def test_ferplus_majority_and_soft_labels():
    ds = load_dataset(FERPLUS, "val", soft=True)
    assert ds.classes[:2] == ["neutral", "happy"] and len(ds.classes) == 8
    assert len(ds) == 3579 - ds.report.dropped_classes.get("unknown", 0) \
        - ds.report.dropped_classes.get("nf", 0)
    np.testing.assert_allclose(ds.soft.sum(1), 1.0, atol=1e-5)
    assert (ds.soft.argmax(1) == ds.labels).mean() > 0.95


def test_merge_and_negative_vs_rest_on_real_data():
    ds = load_dataset(FER, "val", spec=ClassSpec(binary_negative=True))
    assert ds.counts() == {"negative": 467 + 56 + 496 + 653, "other": 895 + 415 + 607}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_decoder_survives_random_bytes(tmp_path, data):
    p = tmp_path / "x.jpg"
    p.write_bytes(data)
    try:
        img = read_face(p, 48, 1)
    except DataError as exc:
        assert "x.jpg" in str(exc)
    else:
        assert img.shape == (48, 48) and img.dtype == np.uint8
