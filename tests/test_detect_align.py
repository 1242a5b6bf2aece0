
import cv2
import numpy as np
import pytest
from conftest import SHARED

from ferkit.analysis import detect
from ferkit.analysis.align import TEMPLATE, align_face
from ferkit.analysis.detect import HaarDetector, WholeImage, YuNetDetector, make_detector
from ferkit.analysis.media import load_image
from ferkit.errors import ConfigError, ModelError
from ferkit.types import FaceBox

MEDIA = SHARED / "media"


@pytest.fixture(scope="module")
def yunet():
    return YuNetDetector()


@pytest.mark.parametrize("name,count", [
    ("two_people.jpg", 2),
    ("obama-480p.jpg", 1),
    ("obama_partial_face.jpg", 1),
    # the media README says 2, but a third real face (a child, bottom right, looking down)
    # is in the photo; YuNet finds it
    ("obama_and_biden.jpg", 3),
])
def test_yunet_face_counts_on_real_photos(yunet, name, count):
    faces = yunet.detect(load_image(MEDIA / name))
    assert len(faces) == count
    for f in faces:
        assert f.score >= 0.7 and len(f.landmarks) == 5
        lx, ly = f.landmarks[0]
        assert f.x <= lx <= f.x + f.w and f.y <= ly <= f.y + f.h


def test_yunet_finds_small_faces_in_a_downscaled_group_photo(yunet):
    img = load_image(MEDIA / "obama_and_biden.jpg")
    small = cv2.resize(img, (500, 357), interpolation=cv2.INTER_AREA)   # faces ~40 px
    assert len(yunet.detect(small)) >= 2


def test_min_face_and_large_image_downscale(yunet):
    img = load_image(MEDIA / "obama_and_biden.jpg")
    big = YuNetDetector(max_side=800).detect(img)          # detection on a 800 px copy
    full = yunet.detect(img)
    assert len(big) == len(full)
    a, b = sorted(big, key=lambda f: f.x)[0], sorted(full, key=lambda f: f.x)[0]
    assert abs(a.x - b.x) < 10 and abs(a.w - b.w) < 15     # boxes in original pixels
    assert YuNetDetector(min_face=400).detect(img) == []


def test_weights_checksum_is_verified(tmp_path, monkeypatch):
    bad = tmp_path / "yunet.onnx"
    data = bytearray(detect.YUNET_FILE.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(detect, "YUNET_FILE", bad)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        YuNetDetector()


def test_haar_backend_on_opencv4():
    if not hasattr(cv2, "CascadeClassifier"):
        with pytest.raises(ConfigError, match="Haar"):
            HaarDetector()
        return
    faces = make_detector("haar").detect(load_image(MEDIA / "two_people.jpg"))
    assert len(faces) == 2 and faces[0].landmarks is None


def test_none_detector_and_unknown_name():
    img = np.zeros((60, 50, 3), np.uint8)
    (box,) = WholeImage().detect(img)
    assert (box.w, box.h) == (50, 60)
    with pytest.raises(ConfigError, match="unknown detector"):
        make_detector("mtcnn")


def test_alignment_undoes_head_tilt(yunet):
    """A face tilted by 12 degrees aligns back close to the upright one, clearly closer
    than the same box cropped without landmarks. (YuNet's landmarks under-read strong
    tilts, about 10 of 25 degrees, so larger angles are only partly undone.)"""
    img = load_image(MEDIA / "obama-480p.jpg")
    (face,) = yunet.detect(img)
    ref = align_face(img, face, 48).image
    m = cv2.getRotationMatrix2D((face.x + face.w / 2, face.y + face.h / 2), 12, 1.0)
    rot = cv2.warpAffine(img, m, img.shape[1::-1])
    (rface,) = yunet.detect(rot)
    aligned = align_face(rot, rface, 48).image
    boxed = align_face(rot, FaceBox(rface.x, rface.y, rface.w, rface.h, rface.score), 48).image
    assert ref.shape == aligned.shape == (48, 48)

    def corr(a, b):   # landmarks are good to a pixel or two: compare at that scale
        a, b = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), 2).ravel() for x in (a, b))
        return np.corrcoef(a, b)[0, 1]
    assert corr(ref, aligned) > 0.7
    assert corr(ref, aligned) > corr(ref, boxed) + 0.15


def test_template_is_symmetric_fer_framing():
    assert TEMPLATE[0, 0] + TEMPLATE[1, 0] == pytest.approx(1.0)
    assert 0.3 < TEMPLATE[0, 1] < 0.45            # eyes a little above the middle


def test_colour_crops_at_other_sizes(yunet):
    img = load_image(MEDIA / "two_people.jpg")
    crop = align_face(img, yunet.detect(img)[0], 96, 3).image
    assert crop.shape == (96, 96, 3)
