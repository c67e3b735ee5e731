"""Float-vector checks and the exact top-k scoring shared by the neighbour metrics
(:mod:`hashlearn.metrics.neighbours`) and the rescoring index (:mod:`hashlearn.index.rescoring`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError

METRICS = ("cosine", "ip", "l2")


def check_vectors(
    X: Any, name: str, *, dim: int | None = None, metric: str | None = None
) -> np.ndarray:
    """``X`` as a finite 2-D float array, or a one-line error naming ``name`` and the row.

    ``dim`` is the dimension the vectors must have; ``metric="cosine"`` also refuses zero rows
    (their cosine is undefined).
    """
    arr = np.asarray(X)
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise HashlearnInputError(
            f"{name} must be a 2-D numeric array (n_vectors, dim), got shape {arr.shape} "
            f"and dtype {arr.dtype}."
        )
    if np.iscomplexobj(arr):
        raise HashlearnInputError(f"{name} is complex; pass real-valued vectors.")
    if len(arr) == 0:
        raise HashlearnInputError(f"{name} is empty; pass at least one vector.")
    if dim is not None and arr.shape[1] != dim:
        raise HashlearnInputError(
            f"{name} has dimension {arr.shape[1]} but {dim} is expected (the vectors the "
            "quantizer or index was built on); embed them with the same model."
        )
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise HashlearnInputError(
            f"{name} row {int(np.flatnonzero(bad)[0])} holds NaN or infinite values "
            f"({int(bad.sum())} such rows); drop or repair them."
        )
    if metric == "cosine":
        zero = ~arr.any(axis=1)
        if zero.any():
            raise HashlearnInputError(
                f"{name} row {int(np.flatnonzero(zero)[0])} is all zeros ({int(zero.sum())} "
                "such rows): its cosine similarity is undefined; drop them or use metric='ip' "
                "or 'l2'."
            )
    return arr


def prepared(X: np.ndarray, metric: str) -> np.ndarray:
    X = X.astype(np.float64, copy=False)
    if metric == "cosine":
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    return X


def pair_scores(Q: np.ndarray, D: np.ndarray, metric: str) -> np.ndarray:
    """Scores of every (query, database) pair, larger = nearer: similarity for ``cosine`` and
    ``ip``, minus the squared distance for ``l2``. Inputs are already checked and prepared."""
    S = Q @ D.T
    if metric == "l2":
        S = 2.0 * S - np.einsum("ij,ij->i", Q, Q)[:, None] - np.einsum("ij,ij->i", D, D)[None, :]
    return S


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest ``scores`` sorted descending, ties by smaller id.

    ``ids`` has the shape of ``scores`` (or one row broadcast to it).
    """
    ids = np.broadcast_to(ids, scores.shape)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)
