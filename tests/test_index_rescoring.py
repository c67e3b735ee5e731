"""RescoringIndex: binary candidates rescored exactly with stored vectors, on digits features
and a Gaussian mixture; storage dtypes, save/load/mmap/append, and bad input."""

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.index import MIHIndex, RescoringIndex
from hashlearn.metrics import exact_knn, knn_recall
from hashlearn.quantize import ITQ


@pytest.fixture(scope="module")
def digits_split(digits):
    db = digits.database.X.astype(np.float64)
    return db, digits.query.X[:100].astype(np.float64)


@pytest.fixture(scope="module")
def itq32(digits_split):
    return ITQ(n_bits=32, random_state=0).fit(digits_split[0])


def mixture(n, d=32, centres=20, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((centres, d)) * 3
    return means[rng.integers(0, centres, n)] + rng.standard_normal((n, d))


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_all_candidates_gives_the_exact_knn(digits_split, itq32, metric):
    db, q = digits_split
    index = RescoringIndex(itq32, metric=metric)
    index.add(db)
    scores, ids = index.search(q, 10, oversample=len(db) / 10)
    true_scores, true_ids = exact_knn(q, db, 10, metric=metric)
    assert knn_recall(true_ids, ids) > 0.995  # only float rounding ties can differ
    np.testing.assert_allclose(scores, true_scores, rtol=1e-6, atol=1e-6)  # float32 storage


def test_recall_grows_with_oversampling_and_beats_codes_alone(digits_split, itq32):
    db, q = digits_split
    index = RescoringIndex(itq32, metric="cosine")
    index.add(db)
    true = exact_knn(q, db, 10, metric="cosine")[1]
    recalls = [knn_recall(true, index.search(q, 10, oversample=r)[1]) for r in (1, 2, 4, 10)]
    assert recalls == sorted(recalls)  # candidate lists are nested, so recall cannot drop
    hamming_only = knn_recall(true, index.first_stage.search(itq32.encode(q), 10)[1])
    assert recalls[0] >= hamming_only  # rescoring the same 10 reorders but keeps them
    assert recalls[-1] > hamming_only + 0.2


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_asymmetric_first_stage_at_least_as_good_as_symmetric(digits_split, itq32, metric):
    db, q = digits_split
    true = exact_knn(q, db, 10, metric=metric)[1]
    recall = {}
    for asymmetric in (False, True):
        index = RescoringIndex(itq32, metric=metric, asymmetric=asymmetric)
        index.add(db)
        recall[asymmetric] = [
            knn_recall(true, index.search(q, 10, oversample=r)[1]) for r in (1, 4)
        ]
    print(f"digits ITQ-32 {metric} recall@10 at 1x, 4x: sym {recall[False]} asym {recall[True]}")
    assert all(a >= s - 0.01 for a, s in zip(recall[True], recall[False]))


def test_asymmetric_on_a_gaussian_mixture_within_noise():
    X = mixture(3000, seed=1)
    db, q = X[:2800], X[2800:]
    quantizer = ITQ(n_bits=16, random_state=0).fit(db)
    true = exact_knn(q, db, 10, metric="l2")[1]
    recall = {}
    for asymmetric in (False, True):
        index = RescoringIndex(quantizer, metric="l2", asymmetric=asymmetric)
        index.add(db)
        recall[asymmetric] = knn_recall(true, index.search(q, 10, oversample=10)[1])
    assert recall[True] >= recall[False] - 0.01


@pytest.mark.parametrize(
    "dtype, scale, tol",
    [("float16", "vector", 0.01), ("int8", "vector", 0.03), ("int8", "global", 0.05)],
)
def test_compressed_vectors_keep_recall(digits_split, itq32, dtype, scale, tol):
    db, q = digits_split
    true = exact_knn(q, db, 10, metric="l2")[1]
    found = {}
    for vector_dtype in ("float32", dtype):
        index = RescoringIndex(itq32, metric="l2", vector_dtype=vector_dtype, int8_scale=scale)
        index.add(db)
        found[vector_dtype] = knn_recall(true, index.search(q, 10, oversample=10)[1])
    assert found[dtype] >= found["float32"] - tol


@pytest.mark.parametrize("first_stage", ["flat", "mih"])
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_save_load_mmap_and_append_roundtrip(tmp_path, digits_split, itq32, first_stage, dtype):
    db, q = digits_split
    full = RescoringIndex(itq32, first_stage=first_stage, vector_dtype=dtype, int8_scale="global")
    ids = np.arange(len(db)) * 3 + 7
    full.add(db, ids=ids)
    want = full.search(q, 5, oversample=3)
    np.testing.assert_array_equal(np.isin(want[1], ids), True)
    full.save(tmp_path / "ix")
    for mmap in (False, True):
        got = RescoringIndex.load(tmp_path / "ix", mmap=mmap)
        assert isinstance(got.first_stage, MIHIndex) == (first_stage == "mih")
        np.testing.assert_array_equal(got.search(q, 5, oversample=3)[1], want[1])
        np.testing.assert_allclose(got.search(q, 5, oversample=3)[0], want[0])
    half = RescoringIndex(itq32, first_stage=first_stage, vector_dtype=dtype, int8_scale="global")
    half.add(db[:500], ids=ids[:500])
    half.save(tmp_path / "grown")
    rest = RescoringIndex(itq32, first_stage=first_stage, vector_dtype=dtype, int8_scale="global")
    rest.codec.scale = half.codec.scale  # the same global int8 scale as the saved part
    rest.add(db[500:], ids=ids[500:])
    rest.append_to(tmp_path / "grown")
    grown = RescoringIndex.load(tmp_path / "grown")
    assert len(grown) == len(db)
    if dtype == "float32":
        np.testing.assert_array_equal(grown.search(q, 5, oversample=3)[1], want[1])


# -- bad input ----------------------------------------------------------------------------------


@pytest.fixture()
def small(itq32, digits_split):
    index = RescoringIndex(itq32, metric="cosine")
    index.add(digits_split[0][:200])
    return index


@pytest.mark.parametrize(
    "queries, kwargs, match",
    [
        (np.ones((2, 63)), {}, "queries has dimension 63 but 64"),
        (np.vstack([np.ones(64), np.full(64, np.nan)]), {}, "queries row 1 holds NaN"),
        (np.zeros((1, 64)), {}, "queries row 0 is all zeros"),
        (np.ones((1, 64)), {"oversample": 0.5}, "oversample must be >= 1"),
        (np.ones((1, 64)), {"oversample": "4"}, "oversample must be a number"),
        (np.ones((1, 64)), {"k": 201}, "k=201 is larger than the 200 vectors"),
    ],
)
def test_search_bad_input(small, queries, kwargs, match):
    kwargs = {"k": 5, **kwargs}
    with pytest.raises(HashlearnInputError, match=match):
        small.search(queries, kwargs.pop("k"), **kwargs)


def test_add_bad_input_changes_nothing(small, digits_split, itq32):
    db = digits_split[0]
    before = small.search(db[:3], 5)
    with pytest.raises(HashlearnInputError, match="X has dimension 10"):
        small.add(np.ones((3, 10)))
    with pytest.raises(HashlearnInputError, match="codes has 4 rows but the vectors have 3"):
        small.add_encoded(itq32.encode(db[:4]), db[:3])
    with pytest.raises(HashlearnInputError, match="one id per vector"):
        small.add(db[:3], ids=[1, 2])
    with pytest.raises(HashlearnInputError, match="already in the index"):
        small.add(db[:3], ids=[500, 501, 0])  # id 0 is taken: neither codes nor vectors added
    assert len(small) == 200 and len(small._records) == 200
    np.testing.assert_array_equal(small.search(db[:3], 5)[1], before[1])


def test_global_int8_scale_refuses_larger_vectors(itq32, digits_split):
    db = digits_split[0]
    index = RescoringIndex(itq32, metric="l2", vector_dtype="int8", int8_scale="global")
    index.add(db[:10] * 0.1)
    with pytest.raises(HashlearnInputError, match="beyond the global int8 scale"):
        index.add(db[10:20])
    assert len(index) == 10


def test_damaged_or_mismatched_folder_names_the_file(tmp_path, small, digits_split):
    small.save(tmp_path / "ix")
    store = tmp_path / "ix" / "records.hlx"
    raw = bytearray(store.read_bytes())
    raw[4096 + 100] ^= 0xFF  # one byte of one stored vector
    store.write_bytes(bytes(raw))
    with pytest.raises(HashlearnFileError, match="records.hlx failed its checksum"):
        RescoringIndex.load(tmp_path / "ix", mmap=True)
    other = RescoringIndex(small.quantizer, metric="cosine", vector_dtype="float16")
    other.add(digits_split[0][:5])
    small.save(tmp_path / "a")
    with pytest.raises(HashlearnFileError, match="other settings"):
        other.append_to(tmp_path / "a")
    other.save(tmp_path / "b")
    (tmp_path / "a" / "index.json").replace(tmp_path / "b" / "index.json")
    with pytest.raises(HashlearnFileError, match="does not match"):
        RescoringIndex.load(tmp_path / "b")
    with pytest.raises(HashlearnFileError, match="holds no RescoringIndex"):
        RescoringIndex.load(tmp_path / "missing")


def test_unfitted_quantizer_is_refused():
    with pytest.raises(HashlearnInputError, match="not fitted"):
        RescoringIndex(ITQ(n_bits=8))


def test_from_store_joins_codes_and_vectors_files(tmp_path, digits_split, itq32):
    from hashlearn.index import HammingIndex

    db, q = digits_split
    ids = np.arange(len(db)) + 1000
    codes = HammingIndex(32)
    codes.add_with_ids(itq32.encode(db), ids)
    codes.save(tmp_path / "codes.hlx")
    np.save(tmp_path / "vectors.npy", db)
    direct = RescoringIndex(itq32)
    direct.add(db, ids=ids)
    want = direct.search(q, 5)
    joined = RescoringIndex.from_store(itq32, tmp_path / "codes.hlx", tmp_path / "vectors.npy")
    np.testing.assert_array_equal(joined.search(q, 5)[1], want[1])
    shuffled = np.random.default_rng(0).permutation(len(db))
    matched = RescoringIndex.from_store(
        itq32, tmp_path / "codes.hlx", db[shuffled], vector_ids=ids[shuffled]
    )
    np.testing.assert_array_equal(matched.search(q, 5)[1], want[1])
    with pytest.raises(
        HashlearnInputError, match=f"holds {len(db)} codes but vectors has {len(db) - 1}"
    ):
        RescoringIndex.from_store(itq32, tmp_path / "codes.hlx", db[:-1])
    other_ids = ids.copy()
    other_ids[10] = 5
    with pytest.raises(HashlearnInputError, match="id 1010 of .*codes.hlx has no vector"):
        RescoringIndex.from_store(itq32, tmp_path / "codes.hlx", db, vector_ids=other_ids)
    with pytest.raises(HashlearnInputError, match="are not this quantizer's codes"):
        RescoringIndex.from_store(itq32, tmp_path / "codes.hlx", db[shuffled])


def test_a_folder_with_another_quantizer_is_refused(tmp_path, small, digits_split):
    small.save(tmp_path / "ix")
    other = ITQ(n_bits=32, random_state=1).fit(digits_split[0])
    other.save(tmp_path / "ix" / "quantizer.npz")  # as if a second save died after this file
    with pytest.raises(HashlearnFileError, match="quantizer.npz is not the quantizer"):
        RescoringIndex.load(tmp_path / "ix")
    again = RescoringIndex(other, metric="cosine")
    again.add(digits_split[0][:5], ids=[900, 901, 902, 903, 904])
    small.save(tmp_path / "ok")
    with pytest.raises(HashlearnFileError, match="other settings"):
        again.append_to(tmp_path / "ok")
    assert len(RescoringIndex.load(tmp_path / "ok")) == 200  # nothing appended


def test_failed_append_keeps_codes_and_vectors_together(tmp_path, small, digits_split, monkeypatch):
    from hashlearn.index import _store

    db = digits_split[0]
    small.save(tmp_path / "ix")
    more = RescoringIndex(small.quantizer, metric="cosine")
    more.add(db[200:300], ids=np.arange(200, 300))

    def fail(fd):  # the new records are written, the header that commits them is not
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_store.os, "fsync", fail)
    with pytest.raises(HashlearnFileError, match="keeps its previous 200 codes"):
        more.append_to(tmp_path / "ix")
    monkeypatch.undo()
    survived = RescoringIndex.load(tmp_path / "ix")
    assert len(survived) == 200 and len(survived._records) == 200
    np.testing.assert_array_equal(survived.search(db[:3], 5)[1], small.search(db[:3], 5)[1])
    more.append_to(tmp_path / "ix")  # the stray records are overwritten
    grown = RescoringIndex.load(tmp_path / "ix", mmap=True)
    assert len(grown) == 300
    np.testing.assert_array_equal(grown.search(db[250:253], 1)[1].ravel(), [250, 251, 252])


def test_blocked_rescoring_and_read_only_mmap(tmp_path, small, digits_split, monkeypatch):
    from hashlearn.index import rescoring

    q = digits_split[1][:30]
    want = small.search(q, 7, oversample=5)
    monkeypatch.setattr(rescoring, "RESCORE_BLOCK", 35 * 64 * 4)  # four queries per block
    got = small.search(q, 7, oversample=5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0])
    small.save(tmp_path / "ix")
    mapped = RescoringIndex.load(tmp_path / "ix", mmap=True)
    with pytest.raises(HashlearnInputError, match="read-only"):
        mapped.add(digits_split[0][:2])
    assert len(mapped) == 200
