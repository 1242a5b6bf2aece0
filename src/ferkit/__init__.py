"""ferkit: facial expression recognition — train, evaluate, export, analyse.

    import ferkit
    result = ferkit.analyze("photo.jpg")          # every face: .faces, .to_dict(), .to_dataframe()
    model = ferkit.load_model("default")          # .predict(crops), .predict_mc(...), .labels

Nothing runs at import: ``analyze``, ``load_model`` and the rest load their modules (ONNX
Runtime, OpenCV) when first used, and torch only ever with the training commands.
"""
__version__ = "0.1.0"

from ferkit.errors import ConfigError, DataError, FerkitError, ModelError  # noqa: E402

__all__ = ["__version__", "analyze", "load_model", "AnalysisResult", "Model", "FerkitError",
           "DataError", "ModelError", "ConfigError"]

_LAZY = {"analyze": "api", "load_model": "api", "AnalysisResult": "api", "Model": "api"}


def __getattr__(name: str):
    """Lazy attributes (PEP 562): the API module loads on first use, not at import."""
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
