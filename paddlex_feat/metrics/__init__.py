"""Metrics: retrieval recall@k, precision@k, mAP, mINP, and the open-set score threshold."""

from .calibration import Calibration, calibrate, held_out_classes
from .retrieval import RetrievalResult, l2_normalize, retrieval_metrics, worst_queries

__all__ = [
    "Calibration",
    "RetrievalResult",
    "calibrate",
    "held_out_classes",
    "l2_normalize",
    "retrieval_metrics",
    "worst_queries",
]
