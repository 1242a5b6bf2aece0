"""Release step: export the trained runs into the package as shipped models.

    python scripts/ship_models.py runs/default_s2:default runs/fast:fast runs/ferplus:ferplus \
        int8:default:default_int8

For each RUN:NAME: src/ferkit/assets/NAME.onnx + NAME.head.npz (head for MC dropout) +
NAME.json (model card) + NAME.pt (slim weights-only checkpoint for fine-tuning). Parity is
checked on 256 real val faces of the run's own dataset; the temperature is fitted on val
(`ferkit calibrate`) and the card's val metrics are those of the calibrated ONNX model.
``int8:SRC:NAME`` writes an int8 copy of the shipped model SRC (`ferkit quantize`, 512
calibration faces from SRC's training data), then calibrates and measures it the same way.
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
        if spec.startswith("int8:"):
            _, src, name = spec.split(":")
            _ship_int8(assets, src, name)
            continue
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
        card["metrics"]["val"] = {k: rep[k] for k in VAL_KEYS}
        write_json(onnx.with_suffix(".json"), card)
        print(name, card["metrics"]["val"], "T", round(calib["temperature"], 3),
              "parity", card["parity_max_prob_diff"])


VAL_KEYS = ("n", "accuracy", "macro_f1", "balanced_accuracy", "per_class_accuracy_spread",
            "ece", "ece_uncalibrated", "accuracy_at_coverage")


def _ship_int8(assets: Path, src: str, name: str) -> None:
    import json

    from ferkit.evaluate import calibrate, evaluate
    from ferkit.io import write_json
    from ferkit.quantize import calibration_faces, quantize_model
    from ferkit.zoo import resolve
    card = resolve(src).card
    data, val_src = card["training_data"]["source"], card["training_data"]["val_source"]
    onnx = assets / f"{name}.onnx"
    quantize_model(src, onnx, calibration_faces(data, src, n=512, seed=0), calib_source=data)
    calib = calibrate(onnx, val_src)
    rep = evaluate(val_src, onnx)
    card = json.loads(onnx.with_suffix(".json").read_text())
    card["metrics"]["val"] = {k: rep[k] for k in VAL_KEYS}
    write_json(onnx.with_suffix(".json"), card)
    print(name, card["metrics"]["val"], "T", round(calib["temperature"], 3))


if __name__ == "__main__":
    main(sys.argv[1:])
