"""ferkit: facial expression recognition — train, evaluate, export, analyse.

Nothing runs at import; heavy modules (torch) load only when their commands are used.
"""
__version__ = "0.1.0"

from .errors import ConfigError, DataError, FerkitError, ModelError  # noqa: E402

__all__ = ["__version__", "FerkitError", "DataError", "ModelError", "ConfigError"]
