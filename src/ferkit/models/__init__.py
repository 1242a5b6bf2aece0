"""PyTorch networks and their registry (imports torch: training side only)."""
from .registry import ModelConfig, count_macs, create_model, list_models, model_defaults

__all__ = ["ModelConfig", "count_macs", "create_model", "list_models", "model_defaults"]
