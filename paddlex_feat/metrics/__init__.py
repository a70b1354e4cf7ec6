"""Metrics: retrieval recall@k, precision@k, mAP, mINP, and the open-set score threshold."""

from ..utils.arrays import l2_normalize
from .calibration import Calibration, calibrate, held_out_classes
from .retrieval import RetrievalResult, retrieval_metrics, worst_queries

__all__ = [
    "Calibration",
    "RetrievalResult",
    "calibrate",
    "held_out_classes",
    "l2_normalize",
    "retrieval_metrics",
    "worst_queries",
]
