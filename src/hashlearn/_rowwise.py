"""Row-independent products: each output row depends on its input row only, bit for bit.

A BLAS ``X @ W`` may pick other kernels (and other summation orders) for other batch shapes,
thread counts or CPUs: the same row then gets projections that differ in the last bits, and a
projection within 1e-7 of 0 flips its bit. A code must not depend on which rows it is encoded
with, so every ``transform`` ends in :func:`rowwise_matmul`: each entry is the float64 sum
``Σ_i x[i] · W[i, j]`` taken in the order i = 0, 1, …, d − 1, with no fused multiply-add (Numba
compiles without fast-math, so LLVM neither reorders nor contracts), whatever the batch, its
order, its memory layout or the number of threads. Rows are processed in tiles and the
innermost loop runs over output columns, so it vectorises without reassociating any sum.
"""

from __future__ import annotations

import numba
import numpy as np

_TILE_ROWS = 8
_TILE_COLS = 128


@numba.njit(parallel=True, cache=True, nogil=True)
def _matmul_rows(A: np.ndarray, W: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    # A tile of rows accumulates in a local buffer (which LLVM knows aliases neither input, so
    # the column loop vectorises); each entry still sums over i in order 0..d-1.
    n, d = A.shape
    k = W.shape[1]
    n_tiles = (n + _TILE_ROWS - 1) // _TILE_ROWS
    for tile in numba.prange(n_tiles):
        r0 = tile * _TILE_ROWS
        n_rows = min(n, r0 + _TILE_ROWS) - r0
        acc = np.zeros((_TILE_ROWS, _TILE_COLS))
        for c0 in range(0, k, _TILE_COLS):
            n_cols = min(k, c0 + _TILE_COLS) - c0
            acc[:] = 0.0
            for i in range(d):
                w = W[i, c0 : c0 + n_cols]
                for r in range(n_rows):
                    a = np.float64(A[r0 + r, i])
                    row = acc[r]
                    for j in range(n_cols):
                        row[j] += a * w[j]
            for r in range(n_rows):
                for j in range(n_cols):
                    out[r0 + r, c0 + j] = acc[r, j]


@numba.njit(parallel=True, cache=True, nogil=True)
def _squared_norms(A: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    n, d = A.shape
    for r in numba.prange(n):
        total = 0.0
        for i in range(d):
            a = np.float64(A[r, i])
            total += a * a
        out[r] = total


def _as_rows(A: np.ndarray) -> np.ndarray:
    A = np.ascontiguousarray(A)
    if A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)
    return A


def rowwise_matmul(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``A @ W`` in float64 (n, k), each row computed alone in a fixed order (see module doc).

    ``A`` is float32 or float64 (n, d); ``W`` (d, k) is used in float64.
    """
    A = _as_rows(A)
    W = np.ascontiguousarray(W, dtype=np.float64)
    if A.ndim != 2 or W.ndim != 2 or A.shape[1] != W.shape[0]:
        raise ValueError(f"cannot multiply shapes {A.shape} and {W.shape}")
    out = np.empty((A.shape[0], W.shape[1]), dtype=np.float64)
    if out.size:
        _matmul_rows(A, W, out)
    elif A.shape[0]:
        out[:] = 0.0
    return out


def rowwise_squared_norms(A: np.ndarray) -> np.ndarray:
    """``Σ_i A[r, i]²`` per row in float64, summed in column order (row-independent)."""
    A = _as_rows(A)
    out = np.empty(A.shape[0], dtype=np.float64)
    if A.shape[0]:
        _squared_norms(A, out)
    return out
