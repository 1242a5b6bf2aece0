"""What an online-distillation teacher adds to each training step (issue 16): one teacher's
forward pass on a batch of 128 augmented faces (ferkit.train.distill.Teachers.online, the
call the trainer makes), for the shipped FER2013 models as a PyTorch checkpoint (fp32 and
bf16 autocast, channels-last) and as exported ONNX (float and int8), on 2 threads.

    python benchmarks/teacher_speed.py [--repeats 15] [--out teacher_speed]

Writes benchmarks/results/<out>.json: median ms per batch and seconds per epoch of the
28,709 FER2013 train faces. Run it with the cores otherwise idle.
"""
from __future__ import annotations

import argparse
import statistics
import sys

from _common import ROOT, run_times, write_result

sys.path.insert(0, str(ROOT / "src"))

ASSETS = ROOT / "src" / "ferkit" / "assets"
TRAIN_FACES = 28709
# model -> {teacher variant: file in src/ferkit/assets}; the int8 one is the shipped default
MODELS = {
    "default (resnet18 w64)": {"pytorch fp32": "default_fp32.pt", "pytorch bf16": "default_fp32.pt",
                               "onnx float": "default_fp32.onnx", "onnx int8": "default.onnx"},
    "fast (resnet_fast w16)": {"pytorch fp32": "fast.pt", "pytorch bf16": "fast.pt",
                               "onnx float": "fast.onnx"},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default="teacher_speed")
    args = ap.parse_args()
    import torch

    from ferkit.train.checkpoint import load
    from ferkit.train.distill import Teachers

    torch.set_num_threads(2)
    x = torch.randn(args.batch, 1, 48, 48)
    classes = load(ASSETS / "default_fp32.pt")["classes"]
    rows = []
    for model, variants in MODELS.items():
        for variant, fname in variants.items():
            t = Teachers([str(ASSETS / fname)], classes, temperature=2.0,
                         bf16=variant.endswith("bf16"))
            times = run_times(lambda: t.online(x, [0.5], [0.25]), args.repeats, warmup=3)
            ms = 1000 * statistics.median(times)
            rows.append({"model": model, "teacher": variant, "file": fname,
                         "ms_per_batch": round(ms, 1),
                         "s_per_epoch": round(ms / 1000 * TRAIN_FACES / args.batch, 1)})
            print(rows[-1], flush=True)
    write_result(args.out, {"setup": {"batch": args.batch, "threads": 2,
                                      "repeats": args.repeats, "epoch_faces": TRAIN_FACES,
                                      "call": "ferkit.train.distill.Teachers.online"},
                            "rows": rows})


if __name__ == "__main__":
    main()
