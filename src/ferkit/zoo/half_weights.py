"""Float models stored with float16 weights: half the file, the same float32 arithmetic.

A wide float model (resnet18 w64: 44.6 MB as ONNX) is stored with each large float32
weight as float16 plus a Cast back to float32 in front of its use. ONNX Runtime folds those
Casts into float32 constants when it loads the model, so inference runs exactly as for a
float32 file whose weights were rounded to float16, at the same speed. The checkpoint
beside it keeps the same rounded weights as float16 tensors; loading them into a float32
network casts them back. The rounding is done before export, so the PyTorch and ONNX
parity check compares like with like, and the model card's val metrics are measured on the
stored weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.io import atomic_path

MIN_ELEMENTS = 1024          # smaller tensors (biases, norms) stay float32: they cost little


def round_module(model) -> None:
    """Round a torch module's float parameters and buffers to float16 values, in place."""
    import torch
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def half_state_dict(state: dict) -> dict:
    """A state dict with its float tensors stored as float16 (others unchanged)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def store_half(onnx_path: str | Path) -> int:
    """Rewrite an ONNX file in place: every float32 initializer of at least MIN_ELEMENTS
    values becomes float16 with a Cast to float32. Returns how many were converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(onnx_path)
    model = onnx.load(str(path))
    graph, casts, converted = model.graph, [], 0
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < MIN_ELEMENTS:
            continue
        half = numpy_helper.from_array(arr.astype(np.float16), f"{init.name}__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__cast"))
        converted += 1
    for i, node in enumerate(casts):              # the Casts go first: topological order
        graph.node.insert(i, node)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return converted
