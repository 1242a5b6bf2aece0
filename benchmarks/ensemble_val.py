"""FER2013 val accuracy of checkpoints alone and of every combination of them (their
softmaxes averaged, each with flip TTA): how good a teachers' ensemble is before a
distillation run is spent on it (issue 16). A .pt checkpoint runs in PyTorch fp32, an
exported .onnx (float or int8, as an online teacher runs it) in ONNX Runtime.

    python benchmarks/ensemble_val.py NAME=RUN/best.pt NAME=MODEL.onnx ... [--out ensemble_val]

With no checkpoints named it scores the shipped FER2013 models that have one (default_fp32,
fast). Writes benchmarks/results/<out>.json.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "src"))

SHIPPED = [f"{n}=src/ferkit/assets/{n}.pt" for n in ("default_fp32", "fast")]


def probabilities(path, x):
    """(classes, flip-averaged logits' softmax) of a .pt checkpoint or an exported .onnx."""
    from ferkit.train.checkpoint import build_from_checkpoint, load
    from ferkit.train.distill import load_onnx_teacher
    from ferkit.train.loop import predict_logits
    if path.lower().endswith(".onnx"):
        net, classes, mc = load_onnx_teacher(path, 2)
    else:
        ck = load(path)
        net, classes, mc = build_from_checkpoint(ck), ck["classes"], ck["model_config"]
    logits = predict_logits(net, x, mc["mean"], mc["std"], tta=True)
    return classes, logits.softmax(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("members", nargs="*", default=SHIPPED, help="NAME=CHECKPOINT.pt")
    ap.add_argument("--out", default="ensemble_val", help="result file name")
    args = ap.parse_args()
    import numpy as np
    import torch

    from ferkit.data import load_dataset
    from ferkit.train.loop import images_to_tensor
    torch.set_num_threads(2)
    val = load_dataset(SHARED / "datasets" / "fer2013", "val")
    x, y = images_to_tensor(val.images), torch.from_numpy(np.asarray(val.labels))
    probs, paths = {}, {}
    for spec in args.members:
        name, _, path = spec.partition("=")
        classes, probs[name] = probabilities(path, x)
        if classes != list(val.classes):
            raise SystemExit(f"{path}: classes {classes} are not FER2013's {val.classes}")
        paths[name] = os.path.relpath(os.path.abspath(path), ROOT)   # as from the repo root
        print(f"{name}: {(probs[name].argmax(1) == y).float().mean():.4f}", flush=True)
    rows = []
    for r in range(1, len(probs) + 1):
        for combo in itertools.combinations(probs, r):
            p = sum(probs[n] for n in combo) / len(combo)
            rows.append({"members": list(combo),
                         "val_accuracy": round(float((p.argmax(1) == y).float().mean()), 4)})
            print(f"{' + '.join(combo)}: {rows[-1]['val_accuracy']:.4f}")
    write_result(args.out, {"setup": {"split": "fer2013 val", "n": len(y), "tta": "flip",
                                      "average": "softmax", "checkpoints": paths},
                            "rows": rows})


if __name__ == "__main__":
    main()
