"""The model zoo: shipped models (ONNX + model card) looked up by name, ONNX export and
int8 quantisation (the last two need ferkit[train])."""
from ferkit.zoo.shipped import ASSETS, DEFAULT, ModelRef, read_card, resolve, shipped

__all__ = ["ASSETS", "DEFAULT", "ModelRef", "read_card", "resolve", "shipped"]
