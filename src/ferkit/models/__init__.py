"""PyTorch networks and their registry (imports torch: training side only). The network
modules register their variants with the registry when this package is imported; the
registry itself imports no network module, so there is no import circle."""
from ferkit.models import cnn, resnet  # noqa: F401  (registers the variants)
from ferkit.models.registry import ModelConfig, count_macs, create_model, list_models, model_defaults

__all__ = ["ModelConfig", "count_macs", "create_model", "list_models", "model_defaults"]
