"""Metrics: retrieval recall@k and mAP."""

from ..utils.arrays import l2_normalize
from .retrieval import RetrievalResult, retrieval_metrics, worst_queries

__all__ = ["RetrievalResult", "l2_normalize", "retrieval_metrics", "worst_queries"]
