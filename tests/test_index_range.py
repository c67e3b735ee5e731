"""range_search on every index, one k > count rule, reset, ids checks, missing packages."""

import sys

import numpy as np
import pytest

from hashlearn import hamming_distances
from hashlearn._validation import HashlearnInputError
from hashlearn.index import FaissBinaryIndex, HammingIndex, MIHIndex


def brute_range(queries, database, radius):
    dist = hamming_distances(queries, database)
    lims, d, i = [0], [], []
    for row in dist:
        hits = np.flatnonzero(row <= radius)
        d.append(row[hits])  # hits ascend by id; a stable sort by distance keeps that order
        i.append(hits)
        order = np.argsort(d[-1], kind="stable")
        d[-1], i[-1] = d[-1][order], i[-1][order]
        lims.append(lims[-1] + len(hits))
    return np.array(lims), np.concatenate(d), np.concatenate(i)


def data(seed, n, n_bits, n_q=12):
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 2, (8, n_bits))
    bits = centers[rng.integers(0, 8, n + n_q)] ^ (rng.random((n + n_q, n_bits)) < 0.1)
    packed = np.packbits(bits, axis=1)
    return packed[:n], packed[n:]


@pytest.mark.parametrize("n_bits", [8, 13, 64, 100])
def test_flat_range_search_equals_brute_force(n_bits):
    database, queries = data(n_bits, 7000, n_bits)
    index = HammingIndex(n_bits)
    index.add(database)
    for radius in (0, 1, 2, n_bits // 3, n_bits, n_bits + 5):
        lims, d, i = index.range_search(queries, radius)
        want = brute_range(queries, database, min(radius, n_bits))
        for got, expected in zip((lims, d, i), want):
            np.testing.assert_array_equal(got, expected)
        assert lims.dtype == np.int64 and d.dtype == np.int32 and i.dtype == np.int64


def test_faiss_range_search_is_inclusive_and_sorted():
    pytest.importorskip("faiss")
    database, queries = data(1, 3000, 32)
    index = FaissBinaryIndex(32, "BFlat")
    index.add(database)
    for radius in (0, 2, 6):
        for got, expected in zip(
            index.range_search(queries, radius), brute_range(queries, database, radius)
        ):
            np.testing.assert_array_equal(got, expected)
    graph = FaissBinaryIndex(32, "BHNSW16")
    graph.add(database)
    with pytest.raises(HashlearnInputError, match="no range search"):
        graph.range_search(queries, 2)


def test_milvus_range_search_equals_exact(tmp_path):
    pytest.importorskip("milvus_lite")
    from hashlearn.index import MilvusBinaryIndex

    database, queries = data(2, 1500, 32)
    with MilvusBinaryIndex(32, uri=str(tmp_path / "m.db"), collection="c") as index:
        index.add(database)
        for radius in (0, 5):
            for got, expected in zip(
                index.range_search(queries, radius), brute_range(queries, database, radius)
            ):
                np.testing.assert_array_equal(got, expected)
        with pytest.raises(HashlearnInputError, match="larger than the 1500"):
            index.search(queries, 1501)
        index.reset()
        assert len(index) == 0
        with pytest.raises(HashlearnInputError, match="empty"):
            index.search(queries, 1)


@pytest.mark.parametrize("make", [HammingIndex, MIHIndex, lambda b: FaissBinaryIndex(b)])
def test_one_rule_for_k_radius_empty_and_reset(make):
    if make not in (HammingIndex, MIHIndex):
        pytest.importorskip("faiss")
    database, queries = data(3, 50, 16)
    index = make(16)
    with pytest.raises(HashlearnInputError, match="empty"):
        index.search(queries, 1)
    with pytest.raises(HashlearnInputError, match="empty"):
        index.range_search(queries, 1)
    index.add(database)
    with pytest.raises(HashlearnInputError, match="larger than the 50 codes"):
        index.search(queries, 51)
    for radius in (-1, True, 1.5):
        with pytest.raises(HashlearnInputError, match="radius must be a non-negative integer"):
            index.range_search(queries, radius)
    index.reset()
    assert len(index) == 0


def test_backends_needing_whole_bytes_say_so():
    pytest.importorskip("faiss")
    with pytest.raises(HashlearnInputError, match="divisible by 8"):
        FaissBinaryIndex(20)
    pytest.importorskip("milvus_lite")
    from hashlearn.index import MilvusBinaryIndex

    with pytest.raises(HashlearnInputError, match="divisible by 8"):
        MilvusBinaryIndex(20)


def test_missing_optional_packages_raise_import_error_with_pip_line(monkeypatch):
    from hashlearn.index import MilvusBinaryIndex

    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"pip install 'hashlearn\[faiss\]'"):
        FaissBinaryIndex(16)
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(ImportError, match=r"pip install 'hashlearn\[milvus\]'"):
        MilvusBinaryIndex(16)


@pytest.mark.parametrize(
    "ids, message",
    [
        ([1, 1, 2], "duplicates"),
        ([1, -2, 3], "non-negative"),
        ([1, 2], "one id per code"),
        (np.array([0.5, 1, 2]), "integers"),
        ([7, 8, 9], "already in the index"),
    ],
)
def test_bad_ids(ids, message):
    index = HammingIndex(8)
    index.add_with_ids(np.zeros((1, 1), np.uint8), [7])
    with pytest.raises(HashlearnInputError, match=message):
        index.add_with_ids(np.zeros((3, 1), np.uint8), ids)


def test_milvus_lite_refuses_ivf_with_the_server_hint(tmp_path):
    from hashlearn.index import MilvusBinaryIndex

    with pytest.raises(HashlearnInputError, match="BIN_IVF_FLAT needs a Milvus server"):
        MilvusBinaryIndex(64, uri=str(tmp_path / "lite.db"), index_type="BIN_IVF_FLAT")
