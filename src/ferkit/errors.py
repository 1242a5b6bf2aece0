"""One exception family for ferkit: every user mistake surfaces as a FerkitError whose
message names the file (and line) and says how to fix it. The CLI prints these without a
stack trace and exits non-zero."""


class FerkitError(Exception):
    """Base class of every error ferkit raises on purpose."""


class DataError(FerkitError):
    """A dataset, image or label file that cannot be used as given."""


class ModelError(FerkitError):
    """A model name, checkpoint or ONNX file that cannot be used as given."""


class ConfigError(FerkitError):
    """An option or recipe value that is unknown or out of range."""
