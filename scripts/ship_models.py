"""Release step: export the trained runs into the package as shipped models.

    python scripts/ship_models.py runs/default:default runs/fast:fast runs/ferplus:ferplus

For each RUN:NAME: src/ferkit/assets/NAME.onnx + NAME.head.npz (head for MC dropout) +
NAME.json (model card) + NAME.pt (slim weights-only checkpoint for fine-tuning). Parity is
checked on 256 real val faces of the run's own dataset; the temperature is fitted on val
(`ferkit calibrate`) and the card's val metrics are those of the calibrated ONNX model.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(specs):
    import json

    import numpy as np

    from ferkit.data import load_dataset
    from ferkit.evaluate import calibrate, evaluate
    from ferkit.export import export
    from ferkit.io import write_json
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
        onnx = assets / f"{name}.onnx"
        card = export(Path(run) / "best.pt", onnx, name=name, parity_images=imgs,
                      slim_checkpoint=assets / f"{name}.pt", evaluate_val=False)
        val_src = cfg.get("val_data") or cfg["data"]
        calib = calibrate(onnx, val_src)                 # temperature fitted on val
        rep = evaluate(val_src, onnx)                    # with that temperature
        card = json.loads(onnx.with_suffix(".json").read_text())
        card["metrics"]["val"] = {k: rep[k] for k in (
            "n", "accuracy", "macro_f1", "balanced_accuracy", "per_class_accuracy_spread",
            "ece", "ece_uncalibrated", "accuracy_at_coverage")}
        write_json(onnx.with_suffix(".json"), card)
        print(name, card["metrics"]["val"], "T", round(calib["temperature"], 3),
              "parity", card["parity_max_prob_diff"])


if __name__ == "__main__":
    main(sys.argv[1:])
