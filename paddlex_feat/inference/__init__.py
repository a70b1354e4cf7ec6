"""Inference: run an exported folder on images (predictor), and the result objects it yields."""

from .predictor import Predictor, find_model_files
from .results import FeatureResult
from .spec import INFERENCE_YML, build_inference_yml, load_inference_spec

__all__ = [
    "INFERENCE_YML",
    "FeatureResult",
    "Predictor",
    "build_inference_yml",
    "find_model_files",
    "load_inference_spec",
]
