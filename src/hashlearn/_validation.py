"""Input checks shared by every public entry point.

Every check raises :class:`~hashlearn.exceptions.HashlearnInputError` (a ``ValueError``) with
a message that names the argument, what is wrong with it, and how to fix it, so that users never
meet a traceback from deep inside numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_array, validate_data

# The error classes live in the public hashlearn.exceptions; re-exported for older imports.
from hashlearn.exceptions import (  # noqa: F401
    HashlearnInputError,
    HashlearnInputTypeError,
    HashlearnParameterError,
)


def check_features(
    X: Any,
    name: str = "X",
    *,
    n_features: int | None = None,
    min_samples: int = 1,
    estimator: Any = None,
    reset: bool = True,
) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array, or raise a clear :class:`HashlearnInputError`.

    Float32 input stays float32 (memory); anything else becomes float64. The checks are
    scikit-learn's: ``validate_data`` when an ``estimator`` is given (which records
    ``n_features_in_`` when ``reset``, and otherwise checks the feature count against it),
    else ``check_array``. Common mistakes are caught first or re-worded with the fix.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise HashlearnInputError(
            f"{name} is a sparse matrix, which hashlearn does not support; "
            "pass X.toarray() or reduce it first (e.g. TruncatedSVD)."
        )
    try:
        view = np.asarray(X)  # no copy for arrays; X itself goes on to scikit-learn
    except Exception as exc:  # ragged lists and the like
        raise HashlearnInputError(f"{name} could not be turned into an array: {exc}") from None
    shape = view.shape
    if np.iscomplexobj(view):
        raise HashlearnInputError(
            f"Complex data not supported: {name} is complex; pass real-valued features."
        )
    if len(shape) != 2:
        raise HashlearnInputError(
            f"{name} must be 2-D (n_samples, n_features), got shape {shape}. Reshape your data: "
            "X.reshape(len(X), -1) for images, X.reshape(1, -1) for a single sample."
        )
    options = {"dtype": (np.float64, np.float32), "ensure_min_samples": min_samples}
    try:
        if estimator is None:
            arr = check_array(X, input_name=name, **options)
        else:
            arr = validate_data(estimator, X, reset=reset, **options)
    except (ValueError, TypeError) as exc:
        raise _reworded(exc, view, name, estimator, min_samples) from None
    if n_features is not None and arr.shape[1] != n_features:
        raise HashlearnInputError(
            f"{name} has {arr.shape[1]} features but the model was fitted on {n_features}; "
            "pass data with the same columns as the training data."
        )
    return arr


def _reworded(
    exc: Exception, X: np.ndarray, name: str, estimator: Any, min_samples: int
) -> HashlearnInputError:
    """scikit-learn's validation error as a HashlearnInputError, with the fix spelt out."""
    message = str(exc)
    if "sample(s)" in message:
        message = (
            f"{name} has {X.shape[0]} sample(s) but at least {min_samples} are needed; "
            "pass more rows."
        )
    elif "NaN" in message or "infinity" in message:
        with np.errstate(over="ignore"):
            bad = np.argwhere(~np.isfinite(np.asarray(X, dtype=np.float64)))
        if len(bad):
            row, column = bad[0]
            message = (
                f"{name} contains NaN or infinite values (first at row {row}, column {column}); "
                "impute or drop those rows before hashing."
            )
        else:  # finite, but too large for the float32 array scikit-learn was asked for
            message = (
                f"{name} has values above float32's range (3.4e38); pass it as float64 or "
                f"rescale it first, e.g. {name} / np.abs({name}).max()."
            )
    elif "is expecting" in message:
        message += (
            f" The model was fitted on {estimator.n_features_in_} features; pass data with the "
            "same columns as the training data."
        )
    elif "could not convert" in message or "must be a string" in message:
        message = f"{name} must hold numbers ({message}); convert it with np.asarray(X, float)."
    error = HashlearnInputTypeError if isinstance(exc, TypeError) else HashlearnInputError
    return error(message)


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
