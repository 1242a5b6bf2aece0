"""Analysis path: numpy, OpenCV and ONNX Runtime only (never torch)."""
