"""Derive the 5-point landmark template of FER2013 framing: run YuNet on upscaled FER2013
val faces and average the landmark positions (normalised to the crop). The result is the
constant TEMPLATE in ferkit/analysis/align.py, so aligned crops look like FER2013 faces.

    python scripts/fer_template.py
"""
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
det = cv2.FaceDetectorYN.create(str(ROOT / "src/ferkit/assets/detectors/face_detection_yunet_2023mar.onnx"),
                                "", (192, 192), 0.7, 0.3, 10)
pts, n = [], 0
files = sorted((ROOT.parent / "shared/datasets/fer2013/val").glob("*/*.jpg"))
for f in files[::3]:
    g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
    img = cv2.cvtColor(cv2.resize(g, (192, 192), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    _, faces = det.detect(img)
    n += 1
    if faces is not None and len(faces):
        best = faces[np.argmax(faces[:, 2] * faces[:, 3])]
        pts.append(best[4:14].reshape(5, 2) / 192.0)
pts = np.array(pts)
print(f"detected {len(pts)}/{n}", file=sys.stderr)
print("median template:", np.round(np.median(pts, 0), 4).tolist())
print("std:", np.round(pts.std(0), 4).tolist())
