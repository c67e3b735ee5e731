"""HammingIndex: exact search, tie order, persistence, and agreement with FAISS."""

import numpy as np
import pytest

from hashlearn import hamming_distances, pack
from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.index import HammingIndex


def naive_search(queries, database, k):
    distances = hamming_distances(queries, database)
    order = np.lexsort((np.broadcast_to(np.arange(database.shape[0]), distances.shape), distances))
    order = order[:, :k]
    return np.take_along_axis(distances, order, axis=1), order


@pytest.mark.parametrize("n_bits", [8, 12, 64, 96, 256])
def test_search_is_exact_with_ties_sorted_by_id(n_bits):
    rng = np.random.default_rng(n_bits)
    # Few distinct codes -> many exact ties, which must come out ordered by id.
    base = rng.choice([-1, 1], size=(40, n_bits))
    database = pack(base[rng.integers(0, 40, size=9000)])
    queries = pack(rng.choice([-1, 1], size=(37, n_bits)))
    index = HammingIndex(n_bits)
    index.add(database[:5000])
    index.add(database[5000:])
    assert len(index) == 9000
    for k in (1, 10, 500):
        distances, ids = index.search(queries, k)
        expected_d, expected_i = naive_search(queries, database, k)
        np.testing.assert_array_equal(distances, expected_d)
        np.testing.assert_array_equal(ids, expected_i)


@pytest.mark.parametrize("limit", [0, None])
def test_counting_sort_path_equals_bucket_path(monkeypatch, limit):
    import hashlearn.index.hamming as hamming

    if limit is not None:  # force the large-k path
        monkeypatch.setattr(hamming, "BUCKET_MEMORY_LIMIT", limit)
    rng = np.random.default_rng(12)
    base = rng.choice([-1, 1], size=(30, 24))
    database = pack(base[rng.integers(0, 30, size=5000)])
    queries = pack(rng.choice([-1, 1], size=(9, 24)))
    index = HammingIndex(24)
    index.add(database)
    for k in (1, 37, 5000):
        distances, ids = index.search(queries, k)
        expected_d, expected_i = naive_search(queries, database, k)
        np.testing.assert_array_equal(distances, expected_d)
        np.testing.assert_array_equal(ids, expected_i)


def test_k_equal_to_database_size_returns_full_ranking():
    rng = np.random.default_rng(3)
    database = pack(rng.choice([-1, 1], size=(50, 16)))
    index = HammingIndex(16)
    index.add(database)
    distances, ids = index.search(database[:3], 50)
    assert sorted(ids[0].tolist()) == list(range(50))
    assert (np.diff(distances, axis=1) >= 0).all()
    assert ids[0, 0] == 0 and distances[0, 0] == 0


def test_padding_bits_never_count():
    index = HammingIndex(4)
    index.add(np.array([[0b11110000], [0b11111111]], dtype=np.uint8))
    distances, ids = index.search(np.array([[0b11110000]], dtype=np.uint8), 2)
    np.testing.assert_array_equal(distances, [[0, 0]])
    np.testing.assert_array_equal(ids, [[0, 1]])


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    database = pack(rng.choice([-1, 1], size=(300, 40)))
    index = HammingIndex(40)
    index.add(database)
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = HammingIndex.load(path)
    assert loaded.n_bits == 40 and len(loaded) == 300
    np.testing.assert_array_equal(loaded.codes, database)
    for got, want in zip(loaded.search(database[:5], 7), index.search(database[:5], 7)):
        np.testing.assert_array_equal(got, want)


def test_corrupted_file_gets_clear_error(tmp_path):
    path = tmp_path / "index.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(HashlearnFileError, match="corrupted"):
        HammingIndex.load(path)


def test_matches_faiss_binary_flat():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    database = rng.integers(0, 256, size=(20000, 8), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(50, 8), dtype=np.uint8)
    reference = faiss.IndexBinaryFlat(64)
    reference.add(database)
    faiss_d, _ = reference.search(queries, 20)
    index = HammingIndex(64)
    index.add(database)
    distances, ids = index.search(queries, 20)
    np.testing.assert_array_equal(distances, faiss_d)
    np.testing.assert_array_equal(hamming_distances(queries, database)[0, ids[0]], distances[0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ix: ix.search(np.zeros((1, 2), np.uint8), 0), "positive"),
        (lambda ix: ix.search(np.zeros((1, 2), np.uint8), 11), "larger than the 10"),
        (lambda ix: ix.search(np.zeros((1, 3), np.uint8), 1), "16-bit"),
        (lambda ix: ix.add(np.zeros((1, 2), np.int32)), "uint8"),
        (lambda ix: ix.add(np.zeros((0, 2), np.uint8)), "empty"),
        (lambda ix: ix.search(np.zeros(2, np.uint8), 1), "2-D"),
    ],
)
def test_bad_input_gets_clear_errors(call, message):
    index = HammingIndex(16)
    index.add(np.zeros((10, 2), np.uint8))
    with pytest.raises(HashlearnInputError, match=message):
        call(index)


def test_empty_index_and_bad_n_bits():
    with pytest.raises(HashlearnInputError, match="empty"):
        HammingIndex(8).search(np.zeros((1, 1), np.uint8), 1)
    with pytest.raises(HashlearnInputError, match="positive integer"):
        HammingIndex(0)


@pytest.mark.parametrize("factory", ["BFlat", "BHNSW16", "BIVF8"])
def test_faiss_adapter_shares_the_api(factory, tmp_path):
    pytest.importorskip("faiss")
    from hashlearn.index import FaissBinaryIndex

    rng = np.random.default_rng(6)
    database = pack(rng.choice([-1, 1], size=(3000, 32)))
    queries = database[:20]
    index = FaissBinaryIndex(32, factory, nprobe=8)
    index.add(database)
    distances, ids = index.search(queries, 5)
    exact_d, _ = naive_search(queries, database, 5)
    assert len(index) == 3000
    assert (distances[:, 0] == 0).all()  # every query is in the database
    if factory == "BFlat":
        np.testing.assert_array_equal(distances, exact_d)
    else:  # approximate: never better than exact, and finds most true neighbours
        assert (distances >= exact_d).all()
    index.save(tmp_path / "f.index")
    loaded = FaissBinaryIndex.load(tmp_path / "f.index")
    np.testing.assert_array_equal(loaded.search(queries, 5)[0], distances)


def test_faiss_adapter_errors():
    pytest.importorskip("faiss")
    from hashlearn.index import FaissBinaryIndex

    with pytest.raises(HashlearnInputError, match="divisible by 8"):
        FaissBinaryIndex(12)
    with pytest.raises(HashlearnInputError, match="factory string"):
        FaissBinaryIndex(16, "NoSuchIndex")


def test_milvus_lite_collection_matches_exact_search(tmp_path):
    pytest.importorskip("milvus_lite")
    from hashlearn.index.milvus import MilvusBinaryIndex

    rng = np.random.default_rng(8)
    database = pack(rng.choice([-1, 1], size=(2500, 32)))
    queries = pack(rng.choice([-1, 1], size=(6, 32)))
    uri = str(tmp_path / "codes.db")
    with MilvusBinaryIndex(32, uri=uri, collection="codes") as index:
        index.add(database[:1000])
        index.add(database[1000:])
        assert len(index) == 2500
        distances, ids = index.search(queries, 10)
    expected_d, _ = naive_search(queries, database, 10)
    np.testing.assert_array_equal(distances, expected_d)
    np.testing.assert_array_equal(
        hamming_distances(queries, database)[np.arange(6)[:, None], ids], distances
    )
    with MilvusBinaryIndex(32, uri=uri, collection="codes") as reopened:  # data persisted
        assert len(reopened) == 2500
    with pytest.raises(HashlearnInputError, match="holds 32-bit codes, not 64"):
        MilvusBinaryIndex(64, uri=uri, collection="codes")
