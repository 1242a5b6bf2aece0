"""`ferkit quantize`: post-training static int8 quantisation of an exported ferkit model.

ONNX Runtime's QDQ format: int8 weights (per output channel), uint8 activations whose
ranges are calibrated on training faces (never val: val stays the honest measurement).
The model card beside the result copies the source card (labels, normalisation,
temperature, recipe) and adds a ``quantization`` block; val metrics are re-measured by the
caller (`ferkit evaluate`), because int8 changes them. The MC-dropout head is copied too.
Needs the `onnx` package (in ferkit[train]).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError, ModelError
from ferkit.io import atomic_path, write_json

CALIB_BATCH = 32
# How activation ranges are set from the calibration faces: ONNX Runtime's MinMax (the
# full range seen), Percentile (99.999th percentile: one outlier face cannot stretch a
# range) or Entropy (KL-optimal thresholds).
CALIBRATIONS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


def quantize_model(model, out: str | Path, calib_faces: np.ndarray, *,
                   per_channel: bool = True, calib_source: str | None = None,
                   calibration: str = "minmax") -> dict:
    """Quantise ``model`` (shipped name or .onnx path) to ``out``; return the new card.

    ``calib_faces``: uint8 face crops (N, H, W[, C]) from the training distribution;
    ``calibration``: one of CALIBRATIONS."""
    if calibration not in CALIBRATIONS:
        raise FerkitError(f"quantize: calibration {calibration!r} is not one of "
                          f"{', '.join(CALIBRATIONS)}")
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quant_pre_process,
            quantize_static,
        )
    except ImportError as exc:               # onnxruntime.quantization needs `onnx`
        raise FerkitError(f"quantize needs the onnx package: pip install 'ferkit[train]' "
                          f"({exc})") from None
    from ferkit.zoo.classify import OnnxClassifier
    clf = OnnxClassifier(model, threads=2, tta=False)
    out = Path(out)
    _check_target(out, clf.ref.path, calib_faces)
    # equal batches: ORT's histogram calibrators (percentile, entropy) stack every batch's
    # activations into one array and fail on a shorter last batch, so the remainder is left out
    keep = len(calib_faces) if len(calib_faces) <= CALIB_BATCH else \
        len(calib_faces) - len(calib_faces) % CALIB_BATCH
    x = clf.preprocess(list(calib_faces[:keep]))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.starts = iter(range(0, len(x), CALIB_BATCH))

        def get_next(self):
            i = next(self.starts, None)
            return None if i is None else {clf.input_name: x[i:i + CALIB_BATCH]}

    with tempfile.TemporaryDirectory() as td:
        pre = Path(td) / "pre.onnx"
        try:
            quant_pre_process(str(clf.ref.path), str(pre))
        except Exception as exc:                 # shape inference / optimisation failed
            raise ModelError(f"{clf.ref.path}: cannot prepare it for quantisation ({exc})") \
                from None
        with atomic_path(out) as tmp:
            quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=per_channel,
                            calibrate_method=getattr(CalibrationMethod, CALIBRATIONS[calibration]))
    card = _int8_card(clf.ref, out, {"per_channel": per_channel, "calibration": calibration,
                                     "calibration_faces": keep,
                                     "calibration_source": calib_source})
    write_json(out.with_suffix(".json"), card)
    return card


def _check_target(out: Path, source: Path, calib_faces) -> None:
    """Refuse an output that is not .onnx or would overwrite ``source``, or no faces."""
    if out.suffix.lower() != ".onnx":
        raise FerkitError(f"{out}: the quantised model's file name must end in .onnx")
    if out.resolve() == Path(source).resolve():
        raise FerkitError(f"{out}: would overwrite the model being quantised; pick another name")
    if len(calib_faces) == 0:
        raise FerkitError("quantize: no calibration faces")


def _int8_card(src, out: Path, quant: dict) -> dict:
    """The int8 model's card: the source's, with its MC-dropout head copied beside ``out``,
    the float val metrics kept as ``val_float`` and the quantisation settings."""
    card = dict(src.card)
    card["name"] = out.stem
    head = card.get("mc_dropout_head")
    if head and (src.path.parent / head).is_file():
        dst = out.with_suffix(".head.npz")
        with atomic_path(dst) as tmp:
            shutil.copyfile(src.path.parent / head, tmp)
        card["mc_dropout_head"] = dst.name
    card.pop("speed", None)                       # measured again by classify_speed
    card["metrics"] = {"val_float": card.get("metrics", {}).get("val")}
    card["quantization"] = {"format": "QDQ", "weights": "int8", "activations": "uint8", **quant,
                            "source_model": src.name, "source_sha256": card.get("onnx_sha256")}
    card["onnx_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    return card


def calibration_faces(data: str | Path, model, n: int = 512, seed: int = 0,
                      split: str | None = "train") -> np.ndarray:
    """``n`` faces drawn with ``seed`` from ``data`` (its train split where it has one), at
    the model's input size and channels."""
    from ferkit.data import load_dataset, split_if_present
    from ferkit.zoo.shipped import resolve
    ref = resolve(model)
    ds = load_dataset(data, split_if_present(data, split) if split else None,
                      size=int(ref.card["input_size"]),
                      channels=int(ref.card["channels"]))
    idx = np.random.default_rng(seed).permutation(len(ds))[:n]
    return ds.images[np.sort(idx)]
