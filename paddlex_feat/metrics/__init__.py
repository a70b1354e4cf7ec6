"""Metrics: retrieval recall@k and mAP."""

from .retrieval import RetrievalResult, retrieval_metrics, worst_queries

__all__ = ["RetrievalResult", "retrieval_metrics", "worst_queries"]
