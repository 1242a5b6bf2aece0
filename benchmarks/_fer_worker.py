"""Runs inside the separate `fer` virtual environment (see vs_fer.py): the `fer` package's
own image and video pipelines, timed; prints one JSON object."""
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
media, threads = sys.argv[1], int(sys.argv[2])
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
import cv2  # noqa: E402
from fer.classes import Video  # noqa: E402
from fer.fer import FER  # noqa: E402

cv2.setNumThreads(threads)
det = FER()                       # fer's default: Haar cascade + quantized TFLite model
images = {}
for name in ("two_people.jpg", "obama_and_biden.jpg", "obama-480p.jpg", "obama_partial_face.jpg"):
    img = cv2.imread(os.path.join(media, name))
    det.detect_emotions(img)      # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        faces = det.detect_emotions(img)
        times.append(time.perf_counter() - t)
    images[name] = {"faces": len(faces), "median_ms": 1000 * sorted(times)[2]}
video_path = os.path.join(media, "short_hamilton_clip.mp4")
with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)
    video = Video(video_path, outdir=tmp)
    t = time.perf_counter()
    raw = video.analyze(det, display=False, save_frames=False, save_video=False,
                        annotate_frames=False, zip_images=False)
    dt = time.perf_counter() - t
# fer returns one dict per frame that had faces, with keys box0, box1, ... per face
faces = sum(1 for d in raw for k in d if k.startswith("box"))
print(json.dumps({"images": images, "video": {"seconds": dt, "frames": 275, "fps": 275 / dt,
                                              "faces": faces, "rows": len(raw)},
                  "fer_version": __import__("fer").__version__, "threads": threads}))
