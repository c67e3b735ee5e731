"""Input checks shared by every public entry point.

Every check raises :class:`HashlearnInputError` (a ``ValueError``) with a message that names the
argument, what is wrong with it, and how to fix it, so that users never meet a traceback from
deep inside numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class HashlearnInputError(ValueError):
    """Raised when an argument has the wrong type, shape or values."""


def check_features(
    X: Any, name: str = "X", *, n_features: int | None = None, min_samples: int = 1
) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array, or raise a clear error.

    Float32 input stays float32 (memory); anything else becomes float64.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise HashlearnInputError(
            f"{name} is a sparse matrix, which hashlearn does not support; "
            "pass X.toarray() or reduce it first (e.g. TruncatedSVD)."
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise HashlearnInputError(f"{name} could not be turned into an array: {exc}") from None
    if np.iscomplexobj(arr):
        raise HashlearnInputError(f"{name} is complex; pass real-valued features.")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise HashlearnInputError(
            f"{name} must hold numbers, got dtype {arr.dtype}; "
            "convert it with np.asarray(..., dtype=float)."
        )
    if arr.ndim != 2:
        raise HashlearnInputError(
            f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}; "
            "use X.reshape(len(X), -1) for images or X.reshape(1, -1) for a single sample."
        )
    if arr.shape[0] < min_samples:
        raise HashlearnInputError(
            f"{name} has {arr.shape[0]} sample(s) but at least {min_samples} are needed; "
            "pass more rows."
        )
    if arr.shape[1] == 0:
        raise HashlearnInputError(f"{name} has no features (shape {arr.shape}).")
    if n_features is not None and arr.shape[1] != n_features:
        raise HashlearnInputError(
            f"{name} has {arr.shape[1]} features but the model was fitted on {n_features}; "
            "pass data with the same columns as the training data."
        )
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise HashlearnInputError(
            f"{name} contains NaN or infinite values (first at row {bad[0]}, column {bad[1]}); "
            "impute or drop those rows before hashing."
        )
    return arr


def check_n_bits(n_bits: Any, *, maximum: int | None = None, name: str = "n_bits") -> int:
    """Return ``n_bits`` as a positive int, optionally bounded by ``maximum``."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise HashlearnInputError(f"{name} must be a positive integer, got {n_bits!r}.")
    if maximum is not None and n_bits > maximum:
        raise HashlearnInputError(
            f"{name}={n_bits} is larger than the {maximum} available dimensions; "
            f"use n_bits <= {maximum}."
        )
    return int(n_bits)


def check_choice(value: Any, allowed: list[str] | tuple[str, ...], name: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise an error listing them."""
    if value not in allowed:
        raise HashlearnInputError(
            f"unknown {name} {value!r}; choose one of: {', '.join(map(str, allowed))}."
        )
    return value
