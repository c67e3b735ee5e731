"""Label checks and the label-similarity products that supervised shallow hashing needs.

The pairwise semantic similarity of n training items is an n × n matrix S with
S_ij = s₊ if items i and j share at least one label and s₋ otherwise (SSAH chapter, §2.2.1).
It is never formed: every method only needs products with the labels, A = S Yᵀ (n × c,
the chapter's §2.2.2 "A = S Yᵀ pre-computed once") and the constant ‖S‖²_F, both obtained
here by grouping the items by their distinct label sets, which costs O(n c + u² c) for u
distinct label sets (u = c for single-label data, so O(n c)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError


def check_labels(y: Any, n_samples: int) -> np.ndarray:
    """Return labels as a dense 0/1 float64 matrix (n_samples, n_classes), or raise clearly.

    Accepts 1-D integer class ids 0..c−1 (every id in that range must occur) or a 2-D 0/1
    multi-hot matrix (every column must occur and every row must hold at least one label).
    """
    if y is None:
        raise HashlearnInputError(
            "this method is supervised and needs labels: call fit(X, y) with y of shape "
            "(n_samples,) class ids or (n_samples, n_classes) multi-hot."
        )
    try:
        arr = np.asarray(y)
    except Exception as exc:
        raise HashlearnInputError(f"y could not be turned into an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise HashlearnInputError(
            f"y must hold integer class ids or 0/1 multi-hot rows, got dtype {arr.dtype}; "
            "encode string labels first, e.g. np.unique(y, return_inverse=True)[1]."
        )
    if arr.ndim not in (1, 2):
        raise HashlearnInputError(
            f"y must be 1-D class ids or a 2-D multi-hot matrix, got shape {arr.shape}."
        )
    if arr.shape[0] != n_samples:
        raise HashlearnInputError(
            f"y has {arr.shape[0]} rows but X has {n_samples} samples; pass one label entry "
            "per sample."
        )
    if not np.isfinite(arr.astype(np.float64)).all():
        row = int(np.argwhere(~np.isfinite(arr.astype(np.float64)))[0][0])
        raise HashlearnInputError(
            f"y has missing (NaN or infinite) labels, first at row {row}; drop unlabelled "
            "samples before fitting a supervised method."
        )
    if arr.ndim == 1:
        if (arr != np.round(arr)).any() or (arr < 0).any():
            raise HashlearnInputError(
                "1-D y must hold non-negative integer class ids (missing labels such as -1 are "
                "not allowed); drop unlabelled samples or encode with np.unique(y, "
                "return_inverse=True)[1]."
            )
        ids = arr.astype(np.int64)
        n_classes = int(ids.max()) + 1
        counts = np.bincount(ids, minlength=n_classes)
        Y = np.zeros((n_samples, n_classes))
        Y[np.arange(n_samples), ids] = 1.0
    else:
        if not np.isin(arr, (0, 1)).all():
            raise HashlearnInputError(
                "2-D y must be a 0/1 multi-hot matrix (one column per class); got other values."
            )
        Y = arr.astype(np.float64)
        empty = np.flatnonzero(Y.sum(axis=1) == 0)
        if len(empty):
            raise HashlearnInputError(
                f"{len(empty)} samples have no label (first at row {empty[0]}); drop "
                "unlabelled samples before fitting a supervised method."
            )
        counts = Y.sum(axis=0)
    absent = np.flatnonzero(counts == 0)
    if len(absent):
        raise HashlearnInputError(
            f"class {absent[0]} (of {len(counts)}) has no training sample ({len(absent)} absent "
            "in all); re-number the classes that occur, e.g. np.unique(y, "
            "return_inverse=True)[1], or drop the empty label columns."
        )
    if Y.shape[1] < 2:
        raise HashlearnInputError("y holds a single class; supervised hashing needs at least 2.")
    return Y


def similarity_products(
    Y: np.ndarray, s_pos: float = 1.0, s_neg: float = -1.0
) -> tuple[np.ndarray, float]:
    """A = S Yᵀ (n × c, with Y given sample-major as n × c) and ‖S‖²_F, without forming S.

    S_ij = s_pos if rows i and j of Y share a label, else s_neg. Items are grouped by their
    distinct label set: with u distinct sets, indicator M (u × u) of shared labels and counts
    n_g, A_i = Σ_g S(g_i, g) n_g y_g and ‖S‖² = Σ_{g,h} n_g n_h S(g, h)².
    """
    patterns, inverse, counts = np.unique(Y, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    counts = counts.astype(np.float64)
    weighted = patterns * counts[:, None]  # n_g y_g, (u, c)
    total = weighted.sum(axis=0)  # Σ_j y_j
    A_groups = np.empty_like(patterns)
    norm_sq = 0.0
    block = max(1, 2_000_000 // max(len(patterns), 1))
    for start in range(0, len(patterns), block):
        shared = (patterns[start : start + block] @ patterns.T) > 0  # (b, u)
        # S = s_neg + (s_pos - s_neg) · shared, so S Yᵀ = s_neg Σ_j y_j + (s_pos - s_neg) shared N Y
        A_groups[start : start + block] = s_neg * total + (s_pos - s_neg) * (shared @ weighted)
        n_shared = shared @ counts  # items sharing a label with each group's item
        sq = s_pos**2 * n_shared + s_neg**2 * (len(Y) - n_shared)
        norm_sq += float(counts[start : start + block] @ sq)
    return A_groups[inverse], norm_sq
