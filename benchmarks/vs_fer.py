"""ferkit against the `fer` package, side by side in one run: frames/s on the same video,
time per photo, and the number of faces each finds.

`fer` (pip `fer`, its shipped model and its own Video / detect_emotions pipeline: Haar
cascade + quantized TFLite CNN) is installed by this script into its own virtual environment
(.cache/fer-venv) with tensorflow-cpu; its MTCNN option needs facenet-pytorch + torchvision,
which do not install against torch 2.13 here, so fer runs with its default detector.

    python benchmarks/vs_fer.py [--setup-only]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, SHARED, write_result

VENV = ROOT / ".cache" / "fer-venv"
FER_PKGS = ["fer==25.10.3", "tensorflow-cpu", "opencv-contrib-python<5", "pandas", "matplotlib",
            "requests", "tqdm", "Pillow", "moviepy<2", "ffmpeg-python", "setuptools<81"]


def setup() -> Path:
    py = VENV / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import fer, tensorflow"],
                                      capture_output=True).returncode == 0:
        return py
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "fer==25.10.3"], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *FER_PKGS[1:]], check=True)
    return py


def ferkit_side(threads: int) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from ferkit.analysis.pipeline import Analyzer
    media = SHARED / "media"
    an = Analyzer(model="default", threads=threads)
    images = {}
    for name in ("two_people.jpg", "obama_and_biden.jpg", "obama-480p.jpg", "obama_partial_face.jpg"):
        path = str(media / name)
        an.analyze_image(path)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            res = an.analyze_image(path)
            times.append(time.perf_counter() - t)
        images[name] = {"faces": len(res.faces), "median_ms": 1000 * sorted(times)[2]}
    t = time.perf_counter()
    faces = frames = 0
    for res in an.analyze_video(str(media / "short_hamilton_clip.mp4")):
        frames += 1
        faces += len(res.faces)
    dt = time.perf_counter() - t
    return {"images": images, "video": {"seconds": dt, "frames": frames, "fps": frames / dt,
                                        "faces": faces}, "threads": threads}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--setup-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    py = setup()
    if args.setup_only:
        return
    ours = ferkit_side(args.threads)
    out = subprocess.run([str(py), str(Path(__file__).with_name("_fer_worker.py")),
                          str(SHARED / "media"), str(args.threads)],
                         capture_output=True, text=True, check=True)
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = {"video_fps_ratio": ours["video"]["fps"] / theirs["video"]["fps"],
             "video_faces": [ours["video"]["faces"], theirs["video"]["faces"]],
             "image_faces": {k: [ours["images"][k]["faces"], theirs["images"][k]["faces"]]
                             for k in ours["images"]}}
    print(json.dumps(ratio, indent=2))
    write_result("vs_fer", {"ferkit": ours, "fer": theirs, "comparison": ratio})


if __name__ == "__main__":
    main()
