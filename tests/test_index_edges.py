"""Edges found by FAISS-style binary-index checks: empty indexes on disk, and the ids ``add``
gives (after ``remove_ids``, next to the largest int64)."""

import numpy as np
import pytest

from hashlearn._validation import HashlearnInputError
from hashlearn.index import FaissBinaryIndex, HammingIndex, MIHIndex, read_index

INT64_MAX = np.iinfo(np.int64).max


def codes(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8), dtype=np.uint8)


def emptied(cls):
    index = cls(64)
    index.add_with_ids(codes(5), [3, 9, 4, 7, 1])
    assert index.remove_ids([1, 3, 4, 7, 9]) == 5
    return index


@pytest.mark.parametrize("cls", [HammingIndex, MIHIndex])
@pytest.mark.parametrize("how", ["new", "emptied"])
@pytest.mark.parametrize("write", ["hlx", "npz", "append_to"])
def test_empty_index_round_trips(tmp_path, cls, how, write):
    index = cls(64) if how == "new" else emptied(cls)
    path = tmp_path / f"empty.{'npz' if write == 'npz' else 'hlx'}"
    if write == "append_to":
        index.append_to(path)
    else:
        index.save(path)
    loaders = [cls.load, read_index]
    if write != "npz":
        loaders.append(lambda p: HammingIndex.load(p, mmap=True))
    for load in loaders:
        loaded = load(path)
        assert len(loaded) == 0 and loaded.n_bits == 64 and loaded.codes.shape == (0, 8)
        with pytest.raises(HashlearnInputError, match="the index is empty"):
            loaded.search(codes(1), 1)
    loaded = cls.load(path)
    loaded.add(codes(4, seed=1))  # a loaded empty index works like a new one
    distances, ids = loaded.search(codes(4, seed=1), 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3] and not distances.any()


def test_appending_an_empty_index_leaves_a_store_unchanged(tmp_path):
    path = tmp_path / "db.hlx"
    full = HammingIndex(64)
    full.add_with_ids(codes(3), [10, 11, 12])
    full.save(path)
    before = path.read_bytes()
    for index in (HammingIndex(64), emptied(HammingIndex)):
        index.append_to(path)
    assert path.read_bytes() == before


def test_empty_faiss_index_round_trips(tmp_path):
    pytest.importorskip("faiss")
    FaissBinaryIndex(64).save(tmp_path / "e.faiss")
    loaded = FaissBinaryIndex.load(tmp_path / "e.faiss")
    assert len(loaded) == 0
    loaded.add(codes(2))
    assert loaded.search(codes(2), 1)[1][:, 0].tolist() == [0, 1]


@pytest.mark.parametrize("cls", [HammingIndex, MIHIndex])
def test_add_continues_after_the_largest_id(tmp_path, cls):
    index = cls(64)
    index.add(codes(5))
    assert index.ids.tolist() == [0, 1, 2, 3, 4]  # row numbers: ids ntotal, ntotal + 1, ...
    index.remove_ids([1, 2])
    index.add(codes(2, seed=1))  # max + 1, not ntotal (3 is still taken)
    assert index.ids.tolist() == [0, 3, 4, 5, 6]
    index.save(tmp_path / "db.hlx")
    loaded = cls.load(tmp_path / "db.hlx")
    loaded.add(codes(1, seed=2))
    assert loaded.ids.tolist() == [0, 3, 4, 5, 6, 7]
    np.testing.assert_array_equal(loaded.search(codes(2, seed=1), 1)[1][:, 0], [5, 6])


@pytest.mark.parametrize("cls", [HammingIndex, MIHIndex])
def test_add_after_the_largest_int64_id_is_a_clear_error(cls):
    index = cls(64)
    index.add_with_ids(codes(2), [5, INT64_MAX - 1])
    index.add(codes(1, seed=1))  # INT64_MAX still fits
    assert index.ids.tolist() == [5, INT64_MAX - 1, INT64_MAX]
    with pytest.raises(HashlearnInputError, match=rf"largest one .*{INT64_MAX}.*add_with_ids"):
        index.add(codes(1, seed=2))
    assert len(index) == 3  # nothing was added
    index.add_with_ids(codes(1, seed=2), [6])  # own ids still work
    assert len(index) == 4


def test_milvus_lite_connection_is_retried_until_its_server_listens():
    """Milvus Lite's server may open its socket after pymilvus's first attempt: local files
    are retried until the timeout, server addresses fail at once."""
    exceptions = pytest.importorskip("pymilvus.exceptions")
    from hashlearn.index.milvus import _connect

    class StartingServer:
        attempts = 0

        def __init__(self, uri, timeout, **credentials):
            type(self).attempts += 1
            if type(self).attempts < 3:
                raise exceptions.MilvusException(message="Fail connecting to server")

    assert isinstance(_connect(StartingServer, "codes.db", "", 10.0), StartingServer)
    assert StartingServer.attempts == 3
    StartingServer.attempts = 0
    with pytest.raises(exceptions.MilvusException):
        _connect(StartingServer, "http://milvus.example.org:19530", "", 10.0)
    assert StartingServer.attempts == 1
