"""MIHIndex updates incrementally (no rebuild per add / remove) and stays exact; memory; advice."""

import numpy as np
import pytest

import hashlearn.index.mih as mih_module
from hashlearn import hamming_distances
from hashlearn._validation import HashlearnInputError
from hashlearn.index import HammingIndex, MIHIndex, recommend_index


def tied_codes(rng, n, n_bits, n_centers=8, flip=0.03):
    """Clustered codes with many exact duplicates, so ties decide the order."""
    centers = rng.integers(0, 2, size=(n_centers, n_bits))
    bits = centers[rng.integers(0, n_centers, n)] ^ (rng.random((n, n_bits)) < flip)
    return np.packbits(bits, axis=1)


def brute_knn(queries, codes, ids, k):
    """Exact k-NN by sorting every distance, ties by insertion row, as ids."""
    dist = hamming_distances(queries, codes)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), ids[order]


def check_same(mih, flat, queries, k, radius):
    d, i = mih.search(queries, k)
    fd, fi = flat.search(queries, k)
    np.testing.assert_array_equal(d, fd)
    np.testing.assert_array_equal(i, fi)
    bd, bi = brute_knn(queries, flat.codes, flat.ids, k)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    for got, want in zip(mih.range_search(queries, radius), flat.range_search(queries, radius)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n_bits", [64, 256])
@pytest.mark.parametrize("min_pending", [4096, 0])
def test_interleaved_add_remove_equal_flat_and_brute_force(monkeypatch, n_bits, min_pending):
    """min_pending 4096: every update stays pending (scanned next to the tables);
    0: the fraction rule rebuilds along the way. 256 bits uses the shared code copy."""
    monkeypatch.setattr(mih_module, "MIN_PENDING", min_pending)
    rng = np.random.default_rng(n_bits + min_pending)
    pool = tied_codes(rng, 3000, n_bits)
    flat, mih = HammingIndex(n_bits), MIHIndex(n_bits)
    for index in (flat, mih):
        index.add(pool[:1500])
    queries = np.concatenate([pool[:4], tied_codes(rng, 8, n_bits)])
    radius = n_bits // 8
    check_same(mih, flat, queries, 10, radius)
    start = 1500
    for step in range(6):
        size = [1, 40, 300][step % 3]
        for index in (flat, mih):
            index.add(pool[start : start + size])
        start += size
        check_same(mih, flat, queries, 10, radius)
        gone = rng.choice(flat.ids, size=[3, 100][step % 2], replace=False)
        assert mih.remove_ids(gone) == flat.remove_ids(gone) == len(gone)
        check_same(mih, flat, queries, 25, radius)
    check_same(mih, flat, queries, len(flat), radius)  # k = every code


def test_small_updates_keep_the_tables():
    rng = np.random.default_rng(0)
    codes = tied_codes(rng, 5000, 64)
    mih = MIHIndex(64)
    mih.add(codes)
    mih.search(codes[:1], 1)
    members = mih._tables[9]  # the tables' arrays; a rebuild makes new ones
    mih.add(codes[:1])
    assert mih.search(codes[:1], 2)[1].tolist() == [[0, 5000]]
    mih.remove_ids([0, 17])
    assert mih.search(codes[:1], 1)[1].tolist() == [[5000]]
    assert mih._tables[9] is members  # neither update rebuilt the tables
    mih.add(codes[: mih_module.MIN_PENDING + 1])  # past the threshold: the next search rebuilds
    mih.search(codes[:1], 1)
    assert mih._tables[9] is not members and mih._n_live() == mih.ntotal


def test_fallback_scan_with_pending_and_removed_rows(monkeypatch):
    rng = np.random.default_rng(5)
    codes = np.packbits(rng.integers(0, 2, (3000, 64)), axis=1)
    flat, mih = HammingIndex(64), MIHIndex(64)
    for index in (flat, mih):
        index.add(codes[:2500])
    mih.search(codes[:1], 1)
    for index in (flat, mih):
        index.add(codes[2500:])
        index.remove_ids(np.arange(0, 3000, 7))
    monkeypatch.setattr(mih_module, "MIN_BUDGET", 0)
    monkeypatch.setattr(mih_module, "BUDGET_PER_CODE", 0.0)  # every query falls back
    check_same(mih, flat, codes[:20], 10, 20)
    assert mih.n_scanned_ == 20


def test_long_codes_share_one_code_copy():
    rng = np.random.default_rng(1)
    n, n_bits = 4000, 512
    mih = MIHIndex(n_bits)
    mih.add(tied_codes(rng, n, n_bits))
    mih.search(mih.codes[:1], 1)
    m, code_bytes = mih.n_tables_, n_bits // 8
    assert m > 1 and mih._tables[10].shape[0] == 1  # one copy, not m
    lookup = mih._tables[5].nbytes + mih._tables[7].nbytes  # offsets and bucket keys
    # codes once + uint32 members per table + the alive flags; per-table copies: m * 64 bytes
    assert mih.tables_nbytes - lookup <= n * (code_bytes + 4 * m + 1) + 2**16
    short = MIHIndex(64)
    short.add(tied_codes(rng, n, 64))
    short.search(short.codes[:1], 1)
    assert short._tables[10].shape[0] == short.n_tables_  # per-table copies at <= 128 bits


def test_recommend_index():
    assert recommend_index(64, 1_000_000) == "mih"
    assert recommend_index(128, 10_000_000) == "mih"
    assert recommend_index(256, 10_000_000) == "flat"
    assert recommend_index(64, 10_000) == "flat"
    with pytest.raises(HashlearnInputError, match="n_bits"):
        recommend_index(0, 10)
