"""Release step: export the trained runs into the package as shipped models.

    python scripts/ship_models.py runs/default:default runs/fast:fast runs/ferplus:ferplus

For each RUN:NAME: OUT = src/ferkit/assets/NAME.onnx + NAME.json (model card, with ONNX val
metrics) + NAME.pt (slim weights-only checkpoint for fine-tuning). Parity is checked on 256
real val faces of the run's own dataset.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(specs):
    import numpy as np

    from ferkit.data import load_dataset
    from ferkit.export import export
    from ferkit.train import checkpoint
    assets = ROOT / "src" / "ferkit" / "assets"
    for spec in specs:
        run, name = spec.split(":")
        ck = checkpoint.load(Path(run) / "best.pt")
        cfg = ck["config"]
        val = load_dataset(cfg.get("val_data") or cfg["data"], "val",
                           size=ck["model_config"]["input_size"],
                           channels=ck["model_config"]["in_chans"]).images
        imgs = val[np.random.default_rng(0).permutation(len(val))[:256]]
        card = export(Path(run) / "best.pt", assets / f"{name}.onnx", name=name,
                      parity_images=imgs, slim_checkpoint=assets / f"{name}.pt")
        print(name, card["metrics"]["val"], "parity", card["parity_max_prob_diff"])


if __name__ == "__main__":
    main(sys.argv[1:])
