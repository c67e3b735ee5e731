"""Evaluation of Hamming ranking: mAP@k, precision/recall@k, PR curves, radius precision; and
neighbour metrics against the exact float k-NN (:mod:`hashlearn.metrics.neighbours`)."""

from hashlearn.metrics.neighbours import (
    euclidean_ground_truth,
    exact_knn,
    knn_precision,
    knn_recall,
    relevant_recall_precision,
)
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
    "euclidean_ground_truth",
    "evaluate_retrieval",
    "exact_knn",
    "knn_precision",
    "knn_recall",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "recall_at_k",
    "relevant_recall_precision",
]
