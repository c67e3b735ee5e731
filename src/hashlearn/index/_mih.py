"""Numba kernels of multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012 / TPAMI 2014).

Codes are split into ``m`` disjoint substrings; table ``t`` groups the database by substring
``t`` (CSR: ``offsets`` per key, ``members`` in key order, and for short codes a copy of the
members' full codes in the same order, so a probed bucket is one contiguous run of codes; long
codes share one row-major copy, read through ``members``, which costs ``m`` times less memory).
Rows marked dead in ``alive`` (removed since the tables were built) are skipped. A query probes
every table at substring radius ``r = 0, 1, 2, ...``, table by table.

Certification (TPAMI 2014, Sec. 3, pigeonhole): after probing tables ``0 .. t`` at radius ``r``
and tables ``t+1 .. m-1`` at radius ``r - 1``, an item not yet found differs from the query in
at least ``r + 1`` bits in each of the first ``t + 1`` substrings and ``r`` bits in the others,
so its full distance is at least ``m r + t + 1``. Every item within ``m r + t`` is therefore
found; the bound needs no equal substring lengths (a substring shorter than ``r`` has already
yielded all its items). k-NN stops once ``k`` items lie within the certified radius;
range search once the certified radius reaches the query radius.

Duplicates are recognised without a visited set: an item reached in table ``t`` at radius
``r`` was already reached iff some earlier table has substring distance ``<= r`` or some later
table ``< r``. Each query keeps a bounded probing budget; a query that exceeds it, or whose
remaining probes (all keys within substring radius ``tau // m``, ``tau`` its current k-th
distance) would exceed it, is answered by the flat scan instead (our choice, so the worst case,
e.g. uniform random codes, stays close to the linear scan).
"""

from __future__ import annotations

import numba
import numpy as np

from hashlearn._bitops import popcount

ONE = np.uint64(1)


def real_bit_positions(n_bits: int) -> np.ndarray:
    """Word-bit index (64 * word + bit) of each code bit in ``to_words`` layout, ascending.

    Packed codes are big-endian within a byte and bytes are little-endian within a word, so
    code bit ``c`` sits at ``8 * (c // 8) + 7 - c % 8``; padding bits of the last byte are
    excluded.
    """
    c = np.arange(n_bits)
    return np.sort(8 * (c // 8) + 7 - c % 8)


def substring_runs(n_bits: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the code into ``m`` substrings and describe each as contiguous runs of word bits.

    The first ``n_bits mod m`` substrings get ``ceil(n_bits / m)`` bits, the others
    ``floor(n_bits / m)`` (TPAMI 2014, Sec. 3). Returns ``lens`` (m,), ``runs`` (m, R, 4) of
    ``(word, shift, length, dest)`` and ``n_runs`` (m,).
    """
    positions = real_bit_positions(n_bits)
    base, extra = divmod(n_bits, m)
    lens = np.array([base + (t < extra) for t in range(m)], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(lens)])
    all_runs = []
    for t in range(m):
        seg = positions[bounds[t] : bounds[t + 1]]
        runs, dest, i = [], 0, 0
        while i < len(seg):
            j = i
            while j + 1 < len(seg) and seg[j + 1] == seg[j] + 1 and seg[j + 1] % 64 != 0:
                j += 1
            runs.append((seg[i] // 64, seg[i] % 64, j - i + 1, dest))
            dest += j - i + 1
            i = j + 1
        all_runs.append(runs)
    width = max(len(r) for r in all_runs)
    out = np.zeros((m, width, 4), dtype=np.int64)
    for t, runs in enumerate(all_runs):
        out[t, : len(runs)] = runs
    return lens, out, np.array([len(r) for r in all_runs], dtype=np.int64)


def ball_sizes(max_len: int) -> np.ndarray:
    """``ball[r]``: keys within substring radius ``r`` of a key of ``max_len`` bits."""
    from math import comb

    return np.cumsum([float(comb(max_len, r)) for r in range(max_len + 1)])


def substring_masks(runs: np.ndarray, n_runs: np.ndarray, n_words: int) -> np.ndarray:
    """Per substring and word, the mask of that word's bits that belong to the substring."""
    masks = np.zeros((len(runs), n_words), dtype=np.uint64)
    for t in range(len(runs)):
        for word, shift, length, _ in runs[t, : n_runs[t]]:
            masks[t, word] |= np.uint64(((1 << int(length)) - 1) << int(shift))
    return masks


@numba.njit(cache=True, nogil=True, inline="always")
def _key(qrow, t, runs, n_runs):
    key = np.uint64(0)
    for r in range(n_runs[t]):
        length = np.uint64(runs[t, r, 2])
        part = (qrow[runs[t, r, 0]] >> np.uint64(runs[t, r, 1])) & ((ONE << length) - ONE)
        key |= part << np.uint64(runs[t, r, 3])
    return key


@numba.njit(cache=True, nogil=True)
def table_keys(db_t: np.ndarray, t: int, runs: np.ndarray, n_runs: np.ndarray) -> np.ndarray:
    """Substring ``t`` of every database code, as an integer key."""
    n = db_t.shape[1]
    keys = np.zeros(n, dtype=np.uint64)
    for r in range(n_runs[t]):
        word, shift, dest = runs[t, r, 0], np.uint64(runs[t, r, 1]), np.uint64(runs[t, r, 3])
        mask = (ONE << np.uint64(runs[t, r, 2])) - ONE
        for i in range(n):
            keys[i] |= ((db_t[word, i] >> shift) & mask) << dest
    return keys


@numba.njit(cache=True, nogil=True)
def counting_sort(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Direct-address CSR: ``offsets`` (n_keys + 1) and ``members`` in key order, stable."""
    offsets = np.zeros(n_keys + 1, dtype=np.uint32)
    for key in keys:
        offsets[key + 1] += 1
    for i in range(n_keys):
        offsets[i + 1] += offsets[i]
    cursor = offsets[:-1].copy()
    members = np.empty(len(keys), dtype=np.uint32)
    for i in range(len(keys)):
        key = keys[i]
        members[cursor[key]] = i
        cursor[key] += 1
    return offsets, members


@numba.njit(cache=True, nogil=True, inline="always")
def _bucket(t, key, direct, offsets, off_start, keys, key_start):
    if direct:
        base = off_start[t] + np.int64(key)
        return np.int64(offsets[base]), np.int64(offsets[base + 1])
    lo, hi = key_start[t], key_start[t + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < key_start[t + 1] and keys[lo] == key:
        base = off_start[t] + lo - key_start[t]
        return np.int64(offsets[base]), np.int64(offsets[base + 1])
    return np.int64(0), np.int64(0)


@numba.njit(cache=True, nogil=True)
def probe(qrow, k, radius, tables, budget, n_bits):
    """Candidates of one query: ``(dist, rows, count, tau, ok)``.

    k-NN when ``k > 0`` (``tau`` shrinks to the k-th distance); range search within
    ``radius`` when ``k == 0``. ``ok`` is False when the probing budget ran out.
    """
    lens, runs, n_runs, masks, direct, offsets, off_start, keys, key_start, members, tcodes = (
        tables[:11]
    )
    ball, alive, has_dead, shared = tables[11], tables[12], tables[13], tables[14]
    m, n_words = lens.shape[0], qrow.shape[0]
    qkeys = np.empty(m, dtype=np.uint64)
    for t in range(m):
        qkeys[t] = _key(qrow, t, runs, n_runs)
    cap = 64
    cand_d = np.empty(cap, dtype=np.int64)
    cand_i = np.empty(cap, dtype=np.int64)
    n_cand = 0
    hist = np.zeros(n_bits + 1, dtype=np.int64)
    kept, tau, ops = 0, radius, 0
    for r in range(lens.max() + 1):
        for t in range(m):
            length = lens[t]
            if r <= length:
                limit = ONE << np.uint64(length)
                x = (ONE << np.uint64(r)) - ONE
                while True:
                    a, b = _bucket(t, qkeys[t] ^ x, direct, offsets, off_start, keys, key_start)
                    ops += 8 + b - a
                    for slot in range(a, b):
                        row = np.int64(members[t, slot])
                        if has_dead and alive[row] == 0:
                            continue
                        # One shared row-major copy of the codes (long codes), or one per
                        # table in key order (short codes: contiguous buckets).
                        src, tt = (row, 0) if shared else (slot, t)
                        total = 0
                        for w in range(n_words):
                            total += np.int64(popcount(qrow[w] ^ tcodes[tt, src, w]))
                        if total > tau:
                            continue
                        new = True
                        for t2 in range(m):
                            if t2 == t:
                                continue
                            d2 = 0
                            for w in range(n_words):
                                d2 += np.int64(
                                    popcount((qrow[w] ^ tcodes[tt, src, w]) & masks[t2, w])
                                )
                            if d2 < r or (t2 < t and d2 == r):
                                new = False
                                break
                        if not new:
                            continue
                        if n_cand == cap:
                            cand_d, cand_i, n_cand, cap = _compact(cand_d, cand_i, n_cand, tau)
                        cand_d[n_cand] = total
                        cand_i[n_cand] = row
                        n_cand += 1
                        hist[total] += 1
                        kept += 1
                        if k > 0:
                            while tau > 0 and kept - hist[tau] >= k:
                                kept -= hist[tau]
                                tau -= 1
                    if ops > budget:
                        return cand_d, cand_i, n_cand, tau, False
                    if x == 0:
                        break
                    c = x & (~x + ONE)
                    nxt = x + c
                    x = (((nxt ^ x) >> np.uint64(2)) // c) | nxt
                    if x >= limit:
                        break
            if kept >= k and m * r + t >= tau:
                return cand_d, cand_i, n_cand, tau, True
            if kept >= k:
                # Probes still needed to certify tau (all tables up to radius tau // m), counted at
                # 1 instead of 8 since tau is only an upper bound of the final k-th distance.
                last = min(tau // m, ball.shape[0] - 1)
                if last > r and ops + m * (ball[last] - ball[r]) > budget:
                    return cand_d, cand_i, n_cand, tau, False
    return cand_d, cand_i, n_cand, tau, True


@numba.njit(cache=True, nogil=True)
def _compact(cand_d, cand_i, n_cand, tau):
    keep = 0
    for j in range(n_cand):
        if cand_d[j] <= tau:
            cand_d[keep], cand_i[keep] = cand_d[j], cand_i[j]
            keep += 1
    cap = len(cand_d)
    if keep * 2 > cap:
        cap *= 2
        grown_d = np.empty(cap, dtype=np.int64)
        grown_i = np.empty(cap, dtype=np.int64)
        grown_d[:keep], grown_i[:keep] = cand_d[:keep], cand_i[:keep]
        cand_d, cand_i = grown_d, grown_i
    return cand_d, cand_i, keep, cap


@numba.njit(cache=True, nogil=True)
def _sorted_hits(cand_d, cand_i, n_cand, tau, n_db):
    order_key = np.empty(n_cand, dtype=np.int64)
    kept = 0
    for j in range(n_cand):
        if cand_d[j] <= tau:
            order_key[kept] = cand_d[j] * n_db + cand_i[j]
            kept += 1
    return np.sort(order_key[:kept])


@numba.njit(parallel=True, cache=True, nogil=True)
def mih_knn(qwords, k, tables, budget, n_bits, out_d, out_i, failed):
    """k-NN of every query, ties by row; ``failed[q]`` marks queries over budget."""
    n_db = tables[9].shape[1]
    for qi in numba.prange(qwords.shape[0]):
        cand_d, cand_i, n_cand, tau, ok = probe(qwords[qi], k, n_bits, tables, budget, n_bits)
        if not ok:
            failed[qi] = True
            continue
        hits = _sorted_hits(cand_d, cand_i, n_cand, tau, n_db)
        for j in range(k):
            out_d[qi, j] = hits[j] // n_db
            out_i[qi, j] = hits[j] % n_db


@numba.njit(parallel=True, cache=True, nogil=True)
def mih_range(qwords, radius, tables, budget, n_bits, lims, out_d, out_i, counts, failed):
    """Range search; with ``lims`` empty it only fills ``counts`` / ``failed``, else the hits."""
    n_db = tables[9].shape[1]
    fill = lims.shape[0] > 0
    for qi in numba.prange(qwords.shape[0]):
        if fill and failed[qi]:
            continue
        cand_d, cand_i, n_cand, tau, ok = probe(qwords[qi], 0, radius, tables, budget, n_bits)
        if not ok:
            failed[qi] = True
            continue
        hits = _sorted_hits(cand_d, cand_i, n_cand, radius, n_db)
        counts[qi] = len(hits)
        if fill:
            for j in range(len(hits)):
                out_d[lims[qi] + j] = hits[j] // n_db
                out_i[lims[qi] + j] = hits[j] % n_db
