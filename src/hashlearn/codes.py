"""Packed binary codes and Hamming distances.

A code of ``n_bits`` bits is stored as ``ceil(n_bits / 8)`` bytes in NumPy's ``packbits`` order
(big-endian: bit 0 of an item is the most significant bit of its first byte). Bit ``j`` of an
item is 1 where its ``j``-th value is positive (``+1``, ``1`` or ``True``) and 0 otherwise, so
``sign(z)`` codes and ``{0, 1}`` codes pack to the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._bitops import pairwise_hamming, to_words
from hashlearn._validation import HashlearnInputError

__all__ = ["pack", "unpack", "hamming_distances", "as_packed", "n_bytes_for", "code_statistics"]


def n_bytes_for(n_bits: int) -> int:
    """Bytes needed to store ``n_bits`` bits."""
    return -(-int(n_bits) // 8)


def pack(bits: Any) -> np.ndarray:
    """Pack an (n, k) array of ±1, {0, 1} or booleans into ``uint8`` codes (n, ceil(k / 8)).

    Any value > 0 becomes a 1 bit; zero and negative values become 0 bits.
    """
    arr = np.asarray(bits)
    if arr.ndim != 2:
        raise HashlearnInputError(
            f"bits must be a 2-D array (n_items, n_bits), got shape {arr.shape}; "
            "use bits.reshape(1, -1) for a single code."
        )
    if arr.shape[1] == 0:
        raise HashlearnInputError("bits has zero columns; a code needs at least one bit.")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise HashlearnInputError(f"bits must be numeric or boolean, got dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise HashlearnInputError("bits contains NaN; codes must be ±1, 0/1 or boolean.")
    return np.packbits(arr > 0, axis=1)


def unpack(packed: Any, n_bits: int, *, signed: bool = True) -> np.ndarray:
    """Unpack ``uint8`` codes into an (n, n_bits) array of ±1 (``int8``) or {0, 1} if not signed."""
    packed = _check_packed(packed, "packed", n_bits)
    bits = np.unpackbits(packed, axis=1, count=n_bits)
    if signed:
        return (bits.astype(np.int8) << 1) - 1
    return bits


def hamming_distances(a: Any, b: Any) -> np.ndarray:
    """Hamming distances between every packed code of ``a`` and every one of ``b``.

    Returns an ``int32`` array of shape (len(a), len(b)). It holds len(a) × len(b) integers:
    for top-k search over a large database use :class:`hashlearn.index.HammingIndex` instead.
    """
    a = _check_packed(a, "a")
    b = _check_packed(b, "b")
    if a.shape[1] != b.shape[1]:
        raise HashlearnInputError(
            f"a has {a.shape[1] * 8}-bit rows ({a.shape[1]} bytes) but b has {b.shape[1] * 8} "
            f"({b.shape[1]} bytes); both must come from codes of the same length."
        )
    return pairwise_hamming(to_words(a), to_words(b))


def mask_padding(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Clear the unused low bits of the last byte, so stray padding never counts as distance."""
    spare = 8 * packed.shape[1] - n_bits
    if spare == 0 or not (packed[:, -1] & np.uint8((1 << spare) - 1)).any():
        return packed
    packed = packed.copy()
    packed[:, -1] &= np.uint8((0xFF << spare) & 0xFF)
    return packed


def as_packed(codes: Any, name: str = "codes") -> np.ndarray:
    """Accept packed ``uint8`` codes as they are, or pack ±1 / boolean / {0,1} arrays.

    ``uint8`` input is always taken to be packed already.
    """
    arr = np.asarray(codes)
    if arr.dtype == np.uint8:
        return _check_packed(arr, name)
    try:
        return pack(arr)
    except HashlearnInputError as exc:
        raise HashlearnInputError(f"{name}: {exc}") from None


def _check_packed(packed: Any, name: str, n_bits: int | None = None) -> np.ndarray:
    arr = np.asarray(packed)
    if arr.dtype != np.uint8:
        raise HashlearnInputError(
            f"{name} must be packed codes of dtype uint8 (from hashlearn.codes.pack), "
            f"got dtype {arr.dtype}; call pack() on ±1 or boolean codes first."
        )
    if arr.ndim != 2:
        raise HashlearnInputError(
            f"{name} must be 2-D (n_items, n_bytes), got shape {arr.shape}; "
            "use codes.reshape(1, -1) for a single code."
        )
    if arr.shape[1] == 0:
        raise HashlearnInputError(f"{name} has zero bytes per code.")
    if n_bits is not None:
        if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
            raise HashlearnInputError(f"n_bits must be a positive integer, got {n_bits!r}.")
        if n_bytes_for(n_bits) != arr.shape[1]:
            raise HashlearnInputError(
                f"{name} has {arr.shape[1]} bytes per code but {n_bits} bits need "
                f"{n_bytes_for(n_bits)}; pass the n_bits the codes were packed with."
            )
    return np.ascontiguousarray(arr)


def code_statistics(z: Any) -> dict[str, Any]:
    """How far continuous codes ``z`` (n, n_bits) are from their sign codes, and how balanced
    each bit is: the two diagnostics Doan et al. (CVPR 2022, "One Loss for Quantization",
    figure "(a) Quantization Error, (b) Bit Entropy") plot over training.

    Returns ``quantization_error`` = mean (z - sgn z)^2 (sgn 0 = +1, as :func:`pack`) and
    ``bit_entropy``: per bit, the entropy in bits of the share of +1 (1 = balanced).
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) == 0:
        raise HashlearnInputError(f"codes must be a non-empty (n, n_bits) array, got {z.shape}.")
    signs = np.where(z >= 0, 1.0, -1.0)
    p = (signs > 0).mean(axis=0).clip(1e-12, 1 - 1e-12)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return {
        "quantization_error": float(np.mean((z - signs) ** 2)),
        "bit_entropy": [round(float(e), 6) for e in entropy],
    }
