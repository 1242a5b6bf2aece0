import struct
import zlib

import cv2
import numpy as np
import pytest
from conftest import SHARED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferkit.analysis.imageinfo import header_size
from ferkit.analysis.media import MediaError, decode_image, load_image, video_frames

MEDIA = SHARED / "media"


def _huge_png(path, w=30000, h=30000):
    """A real, valid 30,000 x 30,000 greyscale PNG written row by row (about 1 MB)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + \
            struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * w
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name,shape", [("two_people.jpg", (661, 1126, 3)),
                                        ("obama-480p.jpg", (480, 853, 3))])
def test_real_photos_decode(name, shape):
    assert load_image(MEDIA / name).shape == shape


def test_gray_rgba_and_16bit_become_bgr_uint8(tmp_path, rng):
    for arr, ext in ((rng.integers(0, 255, (40, 50), dtype=np.uint8), ".png"),
                     (rng.integers(0, 255, (40, 50, 4), dtype=np.uint8), ".png"),
                     (rng.integers(0, 65535, (40, 50, 3), dtype=np.uint16), ".png"),
                     (rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), ".bmp"),
                     (rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), ".webp")):
        p = tmp_path / f"x{arr.ndim}{arr.dtype}{ext}"
        cv2.imwrite(str(p), arr)
        img = load_image(p)
        assert img.dtype == np.uint8 and img.shape == (40, 50, 3)


def test_bad_images_name_the_file(tmp_path):
    cases = {"missing.jpg": None, "empty.jpg": b"", "text.png": b"hello, not an image"}
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(MediaError, match=name.replace(".", r"\.")):
            load_image(tmp_path / name)
    jpg = (MEDIA / "obama-480p.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(jpg[: len(jpg) // 2])
    with pytest.raises(MediaError, match=r"half\.jpg: truncated"):
        load_image(tmp_path / "half.jpg")
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(MediaError, match=r"one\.png: image is 1x1 pixels"):
        load_image(tmp_path / "one.png")


def test_huge_image_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    _huge_png(p)
    assert header_size(p.read_bytes()[:64]) == (30000, 30000)
    with pytest.raises(MediaError, match=r"huge\.png: image is 30000x30000 \(900 MP\), over"):
        load_image(p)


def test_header_sizes_match_decoded_sizes(tmp_path, rng):
    arr = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".webp"):
        ok, buf = cv2.imencode(ext, arr)
        assert header_size(buf.tobytes()) == (53, 37), ext


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_decode_random_bytes_never_crashes(data):
    try:
        img = decode_image(data, "fuzz.bin")
    except MediaError as exc:
        assert "fuzz.bin" in str(exc)
    else:
        assert img.dtype == np.uint8 and img.ndim == 3


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 5000), st.binary(min_size=0, max_size=64))
def test_decode_corrupted_real_jpeg(cut, junk):
    data = (MEDIA / "obama-480p.jpg").read_bytes()
    data = data[:cut] + junk + data[cut + len(junk):]
    try:
        img = decode_image(data, "corrupt.jpg")
    except MediaError as exc:
        assert "corrupt.jpg" in str(exc)
    else:
        assert img.ndim == 3


def test_video_frames_stride_and_window():
    frames = list(video_frames(str(MEDIA / "short_hamilton_clip.mp4"), stride=10, start=2.0,
                               end=4.0))
    assert frames[0].time_s == pytest.approx(2.0, abs=0.05)
    assert all(2.0 - 0.05 <= f.time_s <= 4.0 for f in frames)
    assert len(frames) in (6, 7)
    assert frames[0].image.shape == (360, 640, 3)


def test_bad_videos_and_webcam_are_named(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"this is not a video" * 100)
    for name in ("empty.mp4", "junk.mp4"):
        with pytest.raises(MediaError, match=name.replace(".", r"\.")):
            list(video_frames(str(tmp_path / name)))
    with pytest.raises(MediaError, match="webcam 97"):
        list(video_frames(97))
