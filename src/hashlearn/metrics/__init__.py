"""Evaluation of Hamming ranking: mAP@k, precision/recall@k, PR curves, radius precision."""

from hashlearn.metrics.retrieval import (
    PRCurve,
    Score,
    evaluate_retrieval,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    recall_at_k,
)

__all__ = [
    "PRCurve",
    "Score",
    "evaluate_retrieval",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "recall_at_k",
]
