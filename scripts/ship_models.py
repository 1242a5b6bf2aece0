"""Release step: export the trained runs into the package as shipped models.

    python scripts/ship_models.py runs/fer2013_sgd_distill:default_fp32 \
        int8:default_fp32:default runs/fast_c3:fast int8run:runs/ferplus_r18_distill_s2:ferplus

For each RUN:NAME[:half] (half: weights stored as float16, ferkit.zoo.half_weights):
src/ferkit/assets/NAME.onnx + NAME.head.npz (head for MC dropout) +
NAME.json (model card) + NAME.pt (slim weights-only checkpoint for fine-tuning). Parity is
checked on 256 real val faces of the run's own dataset; the temperature is fitted on val
(`ferkit calibrate`) and the card's val metrics are those of the calibrated ONNX model.
``cal:NAME`` only re-calibrates and re-measures a shipped model. ``int8:SRC:NAME`` writes
an int8 copy of the shipped model SRC (`ferkit quantize`, 512 calibration faces from SRC's
training data; ``int8:SRC:NAME:percentile`` sets its activation ranges another way, see
`ferkit quantize --calibration`), then calibrates and measures it the same way.
``int8run:RUN:NAME[:CALIBRATION]`` ships
only the int8 model of a run (its float ONNX is a temporary file; NAME.pt holds the float
weights for fine-tuning and Grad-CAM). ``tta:NAME:VIEWS`` sets the extra test-time views of
a shipped model's card (ferkit.zoo.tta, e.g. ``tta:default_fp32:scale=1.1;scale=0.9``; an
empty VIEWS leaves flip alone), then re-calibrates and re-measures it; an int8 model made
from it afterwards inherits them.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(specs):
    assets = ROOT / "src" / "ferkit" / "assets"
    for spec in specs:
        if spec.startswith("cal:"):
            _measure(assets / f"{spec[4:]}.onnx")
            continue
        if spec.startswith("int8:"):
            _, src, name, *cal = spec.split(":")
            _ship_int8(assets, src, name, *cal)
            continue
        if spec.startswith("tta:"):
            _, name, views = spec.split(":")
            _set_tta(assets / f"{name}.json", views)
            _measure(assets / f"{name}.onnx")
            continue
        if spec.startswith("int8run:"):
            _, run, name, *cal = spec.split(":")
            _ship_run_int8(assets, Path(run), name, *cal)
            continue
        run, name, *half = spec.split(":")
        if half not in ([], ["half"]):
            sys.exit(f"ship_models: {spec!r}: the suffix after RUN:NAME may only be ':half'")
        _export_run(Path(run), assets / f"{name}.onnx", name, assets / f"{name}.pt",
                    half_weights=half == ["half"])
        _measure(assets / f"{name}.onnx")   # calibration fitted on val, then val metrics


def _export_run(run: Path, onnx: Path, name: str, slim: Path, half_weights=False) -> dict:
    """RUN/best.pt -> ONNX + card (+ slim checkpoint), parity checked on 256 val faces."""
    import numpy as np

    from ferkit.data import load_dataset
    from ferkit.train import checkpoint
    from ferkit.zoo.export import export
    ck = checkpoint.load(run / "best.pt")
    cfg = ck["config"]
    val = load_dataset(cfg.get("val_data") or cfg["data"], "val",
                       size=ck["model_config"]["input_size"],
                       channels=ck["model_config"]["in_chans"]).images
    imgs = val[np.random.default_rng(0).permutation(len(val))[:256]]
    card = export(run / "best.pt", onnx, name=name, parity_images=imgs,
                  slim_checkpoint=slim, evaluate_val=False, half_weights=half_weights)
    print(name, "parity", card["parity_max_prob_diff"])
    return card


def _ship_run_int8(assets: Path, run: Path, name: str, calibration: str = "minmax") -> None:
    import tempfile

    from ferkit.zoo.quantize import calibration_faces, quantize_model
    with tempfile.TemporaryDirectory() as td:
        fp32 = Path(td) / f"{name}_fp32.onnx"
        card = _export_run(run, fp32, f"{name}_fp32", assets / f"{name}.pt")
        data = card["training_data"]["source"]
        onnx = assets / f"{name}.onnx"
        quantize_model(fp32, onnx, calibration_faces(data, fp32, n=512, seed=0),
                       calib_source=data, calibration=calibration)
    _measure(onnx)


def _ship_int8(assets: Path, src: str, name: str, calibration: str = "minmax") -> None:
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    from ferkit.zoo.shipped import resolve
    card = resolve(src).card
    data = card["training_data"]["source"]
    onnx = assets / f"{name}.onnx"
    quantize_model(src, onnx, calibration_faces(data, src, n=512, seed=0), calib_source=data,
                   calibration=calibration)
    _measure(onnx)


def _set_tta(card_path: Path, views: str) -> None:
    import json

    from ferkit.io import write_json
    from ferkit.zoo.tta import parse_views
    card = json.loads(card_path.read_text())
    card.pop("tta_views", None)
    parsed = parse_views(views)
    if parsed:
        card["tta_views"] = parsed
    write_json(card_path, card)


def _measure(onnx: Path) -> None:
    """Fit the calibration on val, then write the calibrated model's val metrics."""
    import json

    from ferkit.evaluation.evaluate import calibrate_and_measure
    val_src = json.loads(onnx.with_suffix(".json").read_text())["training_data"]["val_source"]
    card = calibrate_and_measure(onnx, val_src)
    print(onnx.stem, card["metrics"]["val"], "T", round(card["temperature"], 3),
          "cross-fitted ECE", card["calibration"].get("ece_cross_fitted"))


if __name__ == "__main__":
    main(sys.argv[1:])
