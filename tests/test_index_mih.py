"""MIHIndex gives exactly HammingIndex's answers (k-NN and range), ties and ids included."""

import numpy as np
import pytest

from hashlearn import hamming_distances
from hashlearn._validation import HashlearnInputError
from hashlearn.index import HammingIndex, MIHIndex


def clustered_codes(rng, n, n_bits, n_centers=20, flip=0.06):
    centers = rng.integers(0, 2, size=(n_centers, n_bits))
    bits = centers[rng.integers(0, n_centers, n)] ^ (rng.random((n, n_bits)) < flip)
    return np.packbits(bits, axis=1)


def brute_range(queries, database, radius):
    dist = hamming_distances(queries, database)
    lims, d, i = [0], [], []
    for row in dist:
        hits = np.flatnonzero(row <= radius)
        order = np.lexsort((hits, row[hits]))
        d.append(row[hits][order])
        i.append(hits[order])
        lims.append(lims[-1] + len(hits))
    return np.array(lims), np.concatenate(d), np.concatenate(i)


def assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def both(n_bits, database, **kwargs):
    flat, mih = HammingIndex(n_bits), MIHIndex(n_bits, **kwargs)
    flat.add(database)
    mih.add(database)
    return flat, mih


DATASETS = {
    "random": lambda rng, n, b: np.packbits(rng.integers(0, 2, (n, b)), axis=1),
    "clustered": clustered_codes,
    "all_equal": lambda rng, n, b: np.repeat(np.packbits(rng.integers(0, 2, (1, b)), axis=1), n, 0),
    "two_values": lambda rng, n, b: np.packbits(rng.integers(0, 2, (2, b)), axis=1)[
        rng.integers(0, 2, n)
    ],
}


@pytest.mark.parametrize("n_bits", [32, 64, 128])
@pytest.mark.parametrize("data", sorted(DATASETS))
def test_mih_equals_flat(n_bits, data):
    rng = np.random.default_rng(n_bits)
    database = DATASETS[data](rng, 3000, n_bits)
    queries = np.concatenate([database[:5], clustered_codes(rng, 15, n_bits)])
    flat, mih = both(n_bits, database)
    for k in (1, 10, 257, 3000):
        assert_same(mih.search(queries, k), flat.search(queries, k))
    for radius in (0, 3, n_bits // 4):
        got = mih.range_search(queries, radius)
        assert_same(got, flat.range_search(queries, radius))
        assert_same(got, brute_range(queries, database, radius))


def test_all_distinct_codes_and_every_table_count():
    rng = np.random.default_rng(1)
    database = np.unique(np.packbits(rng.integers(0, 2, (2000, 24)), axis=1), axis=0)
    queries = database[::97]
    flat = HammingIndex(24)
    flat.add(database)
    for m in (1, 2, 3, 5, 24):  # equal and unequal substring lengths, down to 1 bit each
        mih = MIHIndex(24, n_tables=m)
        mih.add(database)
        assert_same(mih.search(queries, 7), flat.search(queries, 7))
        assert_same(mih.range_search(queries, 4), flat.range_search(queries, 4))
        assert mih.n_tables_ == m


@pytest.mark.parametrize("n_bits", [12, 70])
def test_lengths_not_multiple_of_8(n_bits):
    rng = np.random.default_rng(n_bits)
    database = clustered_codes(rng, 2500, n_bits)
    flat, mih = both(n_bits, database)
    assert_same(mih.search(database[:30], 15), flat.search(database[:30], 15))
    assert_same(mih.range_search(database[:30], 2), flat.range_search(database[:30], 2))


def test_fallback_to_scan_gives_the_same_answer(monkeypatch):
    import hashlearn.index.mih as mih_module

    rng = np.random.default_rng(2)
    database = np.packbits(rng.integers(0, 2, (4000, 64)), axis=1)
    queries = np.packbits(rng.integers(0, 2, (20, 64)), axis=1)
    flat, mih = both(64, database)
    monkeypatch.setattr(mih_module, "MIN_BUDGET", 0)
    monkeypatch.setattr(mih_module, "BUDGET_PER_CODE", 0.0)  # every query falls back
    assert_same(mih.search(queries, 10), flat.search(queries, 10))
    assert mih.n_scanned_ == 20
    assert_same(mih.range_search(queries, 20), flat.range_search(queries, 20))
    assert mih.n_scanned_ == 20
    monkeypatch.setattr(mih_module, "MIN_BUDGET", 10**12)  # none falls back
    assert_same(mih.search(queries, 10), flat.search(queries, 10))
    assert mih.n_scanned_ == 0


def test_ids_and_removal_match_flat():
    rng = np.random.default_rng(3)
    database = clustered_codes(rng, 2000, 64)
    ids = rng.permutation(10**6)[:2000].astype(np.int64)
    flat, mih = HammingIndex(64), MIHIndex(64)
    for index in (flat, mih):
        index.add_with_ids(database[:1500], ids[:1500])
        index.add_with_ids(database[1500:], ids[1500:])
    queries = database[::50]
    assert_same(mih.search(queries, 5), flat.search(queries, 5))
    gone = ids[::3]
    assert flat.remove_ids(gone) == mih.remove_ids(gone) == len(gone)
    assert len(mih) == 2000 - len(gone)
    d, found = mih.search(queries, 5)
    assert_same((d, found), flat.search(queries, 5))
    assert not np.isin(found, gone).any()
    assert_same(mih.range_search(queries, 3), flat.range_search(queries, 3))
    mih.add(database[:2])  # default ids continue after the largest id
    assert (mih.ids[-2:] == [ids.max() + 1, ids.max() + 2]).all()


def test_mih_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    database = clustered_codes(rng, 1000, 32)
    mih = MIHIndex(32, n_tables=3)
    mih.add_with_ids(database, np.arange(1000) * 7)
    mih.save(tmp_path / "m.hlx")
    loaded = MIHIndex.load(tmp_path / "m.hlx")
    assert loaded.n_tables == 3 and len(loaded) == 1000
    assert_same(loaded.search(database[:9], 4), mih.search(database[:9], 4))
    with pytest.raises(HashlearnInputError, match="in memory"):
        MIHIndex.load(tmp_path / "m.hlx", mmap=True)


@pytest.mark.parametrize("n_tables", [0, 3, 65, 2.5, True])
def test_bad_n_tables(n_tables):
    with pytest.raises(HashlearnInputError, match="n_tables"):
        MIHIndex(64 if n_tables != 3 else 128, n_tables=n_tables)


def test_table_count_follows_the_paper_rule():
    rng = np.random.default_rng(5)
    mih = MIHIndex(64)
    mih.add(np.packbits(rng.integers(0, 2, (2**14, 64)), axis=1))
    mih.search(mih.codes[:1], 1)
    assert mih.n_tables_ == round(64 / 14)
