"""Metrics: retrieval recall@k and mAP."""

from .retrieval import RetrievalResult, l2_normalize, retrieval_metrics, worst_queries

__all__ = ["RetrievalResult", "l2_normalize", "retrieval_metrics", "worst_queries"]
