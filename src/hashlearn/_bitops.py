"""Numba building blocks for Hamming arithmetic on 64-bit words.

``popcount`` lowers to LLVM's ``ctpop`` intrinsic, i.e. the CPU's POPCNT instruction (or a
vectorised equivalent), which is what makes brute-force Hamming search competitive with FAISS.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic


@intrinsic
def popcount(typingctx, value):
    """Number of set bits of a ``uint64``."""
    if value != types.uint64:
        return None
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


def to_words(packed: np.ndarray) -> np.ndarray:
    """View packed ``uint8`` codes (n, n_bytes) as ``uint64`` words (n, ceil(n_bytes / 8)).

    Codes are zero-padded to a multiple of 8 bytes; padding bits are equal in every code, so
    they never change a Hamming distance.
    """
    n, n_bytes = packed.shape
    n_words = max(1, -(-n_bytes // 8))
    if n_bytes == n_words * 8 and packed.flags.c_contiguous:
        return packed.view(np.uint64)
    padded = np.zeros((n, n_words * 8), dtype=np.uint8)
    padded[:, :n_bytes] = packed
    return padded.view(np.uint64)


@numba.njit(parallel=True, cache=True, nogil=True)
def pairwise_hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Hamming distances between word-packed codes ``a`` (m, w) and ``b`` (n, w)."""
    m, n_words = a.shape
    n = b.shape[0]
    out = np.empty((m, n), dtype=np.int32)
    for i in numba.prange(m):
        for j in range(n):
            d = 0
            for w in range(n_words):
                d += popcount(a[i, w] ^ b[j, w])
            out[i, j] = d
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def block_distances(
    query: np.ndarray, db_t: np.ndarray, start: int, stop: int, out: np.ndarray
) -> None:
    """Write distances from one word-packed ``query`` to items ``start:stop`` into ``out``.

    ``db_t`` is word-major (n_words, n): each word's loop is a plain stream that LLVM
    vectorises (with AVX-512 VPOPCNTQ where the CPU has it).
    """
    n = stop - start
    word = db_t[0, start:stop]
    q = query[0]
    for j in range(n):
        out[j] = popcount(q ^ word[j])
    for w in range(1, db_t.shape[0]):
        word = db_t[w, start:stop]
        q = query[w]
        for j in range(n):
            out[j] += popcount(q ^ word[j])
