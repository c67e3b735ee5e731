"""Overflow-safe arithmetic on features of any magnitude.

Squares and sums of features near 1e±300 overflow or underflow float64 (a row norm of 1e300
entries is inf, a covariance of 1e-300 entries is 0). Dividing by a power of two first keeps
every intermediate near 1 and is exact (only the exponent changes), so results on ordinary data
are bit-for-bit the same as without scaling.
"""

from __future__ import annotations

import numpy as np

from hashlearn._validation import HashlearnInputError


def _exponent(max_abs: np.ndarray) -> np.ndarray:
    """Exponents ``e`` with ``max_abs · 2⁻ᵉ`` in [0.5, 1); 0 where ``max_abs`` is 0."""
    return np.frexp(np.where(max_abs > 0, max_abs, 1.0))[1] * (max_abs > 0)


def unit_scaled(A: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(A · 2⁻ᵉ, e)``: ``A`` scaled by a power of two to largest magnitude in [0.5, 1),
    globally (``axis=None``) or per slice along ``axis`` (e.g. ``axis=1`` per row)."""
    max_abs = np.abs(A).max(axis=axis, keepdims=axis is not None, initial=0.0)
    e = _exponent(np.asarray(max_abs))
    return np.ldexp(A, -e).astype(A.dtype, copy=False), e


def safe_mean(X: np.ndarray) -> np.ndarray:
    """Column means of ``X`` in float64 without overflow of the intermediate sums."""
    scaled, e = unit_scaled(np.asarray(X, dtype=np.float64))
    return np.ldexp(scaled.mean(axis=0), e)


def check_finite_projection(Z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Return ``Z``, or explain that ``X`` is too large for float64 when ``Z`` overflowed."""
    if not np.isfinite(Z).all():
        raise HashlearnInputError(
            f"X is too large to hash: its entries reach {np.abs(X).max():.3g} and the projections "
            "overflow float64 (max 1.8e308); rescale X first, e.g. X / np.abs(X).max()."
        )
    return Z


def check_magnitude(X: np.ndarray, method: str, low: float = 1e-15, high: float = 1e15) -> None:
    """Refuse features whose scale breaks float32 squared distances / covariances.

    Kernel and CCA methods square feature differences (kernel features in float32), so entries
    far outside [``low``, ``high``] overflow or underflow silently; say so instead.
    """
    max_abs = float(np.abs(X).max(initial=0.0))
    if max_abs > high or 0 < max_abs < low:
        raise HashlearnInputError(
            f"X's largest entry has magnitude {max_abs:.3g}, outside [{low:g}, {high:g}] where "
            f"{method} can square and sum feature differences without overflow or underflow; "
            "rescale X first, e.g. X / np.abs(X).max() (sign, lsh, pcah, itq and h2q accept "
            "features of any scale)."
        )
