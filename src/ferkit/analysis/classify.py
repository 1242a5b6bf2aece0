"""Kept for older imports: the ONNX classifier lives in :mod:`ferkit.zoo.classify`, where the
training side (temporal heads, the privacy audit, int8 checks) may use it too."""
from ferkit.zoo.classify import OnnxClassifier

__all__ = ["OnnxClassifier"]
