"""Models: one file per architecture family, one registry of builders and model facts."""

from .registry import ModelInfo, build_model, get_model_info, list_models, register_model

__all__ = ["ModelInfo", "build_model", "get_model_info", "list_models", "register_model"]
