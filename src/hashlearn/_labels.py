"""Labels as users have them, turned into what methods and metrics work with.

Two label formats are accepted everywhere (data, metrics, shallow and deep methods):

- **1-D**: one label per item, of any values — integer ids (contiguous or not), integer-valued
  floats, strings, numeric object arrays. The distinct values are the classes, in sorted order,
  as in scikit-learn classifiers.
- **2-D**: a 0/1 multi-hot matrix ``(n, n_classes)`` for multi-label data.

:func:`encode_labels` maps 1-D labels to class ids 0..C−1, :func:`labels_to_multihot` to a
multi-hot matrix, :func:`check_labels` prepares the training labels of a supervised fit, and
:func:`similarity_products` the label-similarity products those fits need.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError


def as_labels(
    y: Any, name: str = "y", n_rows: int | None = None, *, column_is_1d: bool = False
) -> np.ndarray:
    """Validate ``y`` and return it as a 1-D label array or a 2-D 0/1 array, or raise clearly.

    1-D numeric labels come back as int64 (integer-valued floats and numeric objects
    included); other object arrays as text. ``column_is_1d`` reads an ``(n, 1)`` column as
    1-D labels rather than a one-class multi-hot matrix.
    """
    if y is None:
        raise HashlearnInputError(
            f"{name} is None: labels are required; pass one label (or multi-hot row) per item."
        )
    if hasattr(y, "toarray") and hasattr(y, "nnz"):
        y = y.toarray()  # sparse multi-hot indicator matrix
    try:
        arr = np.asarray(y)
    except Exception as exc:  # ragged lists and the like
        raise HashlearnInputError(f"{name} could not be turned into an array: {exc}") from None
    if np.iscomplexobj(arr):
        raise HashlearnInputError(
            f"Complex data not supported: {name} is complex; pass class labels or 0/1 rows."
        )
    if column_is_1d and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise HashlearnInputError(
            f"{name} must be 1-D labels or a 2-D multi-hot matrix, got shape {arr.shape}."
        )
    if n_rows is not None and len(arr) != n_rows:
        raise HashlearnInputError(
            f"{name} has {len(arr)} labels but X has {n_rows} rows; pass one label entry per "
            "sample (a label or a multi-hot row)."
        )
    if arr.ndim == 2:
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise HashlearnInputError(
                f"multi-hot {name} must be numeric 0/1, got dtype {arr.dtype}."
            )
        if not np.isin(arr, (0, 1)).all():
            raise HashlearnInputError(
                f"2-D {name} must be a multi-hot matrix of 0 and 1 (one column per class); "
                "got other values."
            )
        return arr
    if arr.dtype == object and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in arr
    ):
        arr = arr.astype(np.float64)
    if arr.dtype == object:
        missing = [i for i, v in enumerate(arr) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise HashlearnInputError(
                f"{name} has missing labels (None or NaN), first at row {missing[0]}; drop "
                "unlabelled samples first."
            )
        arr = arr.astype(str)  # mixed objects compare as their text
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            row = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise HashlearnInputError(
                f"{name} has missing (NaN or infinite) labels, first at row {row}; drop "
                "unlabelled samples first."
            )
        if not np.array_equal(arr, np.round(arr)):
            value = arr[arr != np.round(arr)][0]
            raise HashlearnInputError(
                f"1-D {name} holds non-integer numbers (e.g. {value}), which look like "
                "regression targets; labels must be categories: integer class ids or strings "
                "(a 2-D multi-hot array for multi-label data)."
            )
        arr = arr.astype(np.int64)
    return arr


def encode_labels(
    y: Any, n_rows: int | None = None, name: str = "y"
) -> tuple[np.ndarray, int, list[str]]:
    """Validate labels and return ``(y, n_classes, class_names)``.

    1-D labels (a column vector ``(n, 1)`` counts as 1-D) become class ids 0..C−1 (int64) in
    sorted order of their values; ``class_names`` holds the values as text. 2-D labels are
    returned as uint8 multi-hot with ``class_names`` "0".."C−1".
    """
    arr = as_labels(y, name, n_rows, column_is_1d=True)
    if arr.ndim == 2:
        return arr.astype(np.uint8), arr.shape[1], [str(c) for c in range(arr.shape[1])]
    values, ids = np.unique(arr, return_inverse=True)
    return ids.astype(np.int64).reshape(-1), len(values), [str(v) for v in values]


def labels_to_multihot(
    y: Any,
    n_classes: int | None = None,
    *,
    name: str = "labels",
    dtype: Any = np.uint8,
) -> np.ndarray:
    """Return labels as a multi-hot matrix ``(n, n_classes)`` of ``dtype``.

    Without ``n_classes`` the distinct 1-D values are the classes (columns in sorted order).
    With ``n_classes`` (a dataset's fixed class set, e.g. a deep network's output size) 1-D
    labels must be integer class ids in ``[0, n_classes)`` and index the columns directly, and
    2-D labels must have ``n_classes`` columns.
    """
    arr = as_labels(y, name)
    if arr.ndim == 2:
        if n_classes is not None and arr.shape[1] != n_classes:
            raise HashlearnInputError(
                f"multi-hot {name} have {arr.shape[1]} columns but n_classes={n_classes}."
            )
        return arr.astype(dtype)
    if n_classes is None:
        ids, n_classes, _ = encode_labels(arr, name=name)
    else:
        if not np.issubdtype(arr.dtype, np.integer):
            raise HashlearnInputError(
                f"1-D {name} must be integer class ids 0..{n_classes - 1} here, got dtype "
                f"{arr.dtype}; encode them with hashlearn.data.encode_labels first."
            )
        if len(arr) and (arr.min() < 0 or arr.max() >= n_classes):
            raise HashlearnInputError(
                f"{name} hold class ids in [{arr.min()}, {arr.max()}], out of range for "
                f"n_classes={n_classes}."
            )
        ids = arr
    out = np.zeros((len(ids), n_classes), dtype=dtype)
    out[np.arange(len(ids)), ids] = 1
    return out


def check_labels(y: Any, n_samples: int) -> np.ndarray:
    """Training labels of a supervised fit as a dense 0/1 float64 matrix (n_samples, n_classes).

    The classes are those that occur: distinct 1-D values (so ids may be missing from a
    subset, or be strings), or the non-empty columns of a 2-D multi-hot matrix. Every sample
    needs at least one label and at least two classes must occur.
    """
    if y is None:
        raise HashlearnInputError(
            "this method requires y to be passed, but the target y is None: it is supervised "
            "and needs labels; call fit(X, y) with y of shape (n_samples,) class labels or "
            "(n_samples, n_classes) multi-hot."
        )
    arr = as_labels(y, "y", n_samples)
    if arr.ndim == 1:
        Y = labels_to_multihot(arr, name="y", dtype=np.float64)
    else:
        Y = arr.astype(np.float64)
        empty = np.flatnonzero(Y.sum(axis=1) == 0)
        if len(empty):
            raise HashlearnInputError(
                f"{len(empty)} samples have no label (first at row {empty[0]}); drop "
                "unlabelled samples before fitting a supervised method."
            )
        Y = Y[:, Y.sum(axis=0) > 0]
    if Y.shape[1] < 2:
        raise HashlearnInputError("y holds a single class; supervised hashing needs at least 2.")
    return Y


def similarity_products(
    Y: np.ndarray, s_pos: float = 1.0, s_neg: float = -1.0
) -> tuple[np.ndarray, float]:
    """A = S Yᵀ (n × c, with Y given sample-major as n × c) and ‖S‖²_F, without forming S.

    The pairwise semantic similarity of n training items is S_ij = s_pos if rows i and j of
    Y share a label, else s_neg (SSAH chapter, §2.2.1); the methods only need A (the chapter's
    §2.2.2 "A = S Yᵀ pre-computed once") and ‖S‖². Items are grouped by their distinct label
    set: with u distinct sets, indicator M (u × u) of shared labels and counts n_g,
    A_i = Σ_g S(g_i, g) n_g y_g and ‖S‖² = Σ_{g,h} n_g n_h S(g, h)², in O(n c + u² c).
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
