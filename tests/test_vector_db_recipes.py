"""README "Storing codes in a vector database": each recipe run on small real data.

Codes made outside hashlearn from the exported (mean, W) are stored in FAISS / Milvus Lite and
searched there; the Hamming hits must be those of :class:`HammingIndex` and rescoring with the
float vectors must recover the exact cosine neighbours. Qdrant's local mode accepts a binary
quantization config but searches exactly, so its test checks the part of the recipe that
runs here: the rotated floats keep every cosine.
"""

import numpy as np
import pytest

from hashlearn.codes import hamming_distances
from hashlearn.export import linear_form
from hashlearn.quantize import H2Q, ITQ


def _embeddings(n=1200, d=32, seed=0):
    """Clustered unit vectors, a stand-in for sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    X = centres[rng.integers(0, 20, n)] + 0.6 * rng.standard_normal((n, d)) + 0.5
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _rescore(queries, X, candidates, k):
    """Top-k of each row of ``candidates`` by cosine (unit vectors: inner product)."""
    scores = np.einsum("qd,qcd->qc", queries, X[candidates])
    return np.take_along_axis(candidates, np.argsort(-scores, axis=1)[:, :k], axis=1)


def _exact(queries, X, k):
    return np.argsort(-(queries @ X.T), axis=1)[:, :k]


def _recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


@pytest.fixture(scope="module")
def setup():
    X = _embeddings()
    database, queries = X[:1000], X[1000:1040]
    model = ITQ(n_bits=32, random_state=0).fit(database)
    mean, W = linear_form(model)
    codes = np.packbits((database - mean) @ W > 0, axis=1)
    qcodes = np.packbits((queries - mean) @ W > 0, axis=1)
    return database, queries, codes, qcodes


def _check_hits(qcodes, codes, ids, distances):
    full = hamming_distances(qcodes, codes)
    np.testing.assert_array_equal(np.take_along_axis(full, ids, axis=1), distances)
    kth = np.sort(full, axis=1)[:, ids.shape[1] - 1]
    assert (distances.max(axis=1) == kth).all()  # the true nearest by Hamming distance


def test_faiss_binary_flat_and_hnsw_with_rescoring(setup):
    faiss = pytest.importorskip("faiss", reason="pip install faiss-cpu")
    database, queries, codes, qcodes = setup
    index = faiss.IndexBinaryFlat(32)
    index.add(codes)
    dist, ids = index.search(qcodes, 100)  # 10 x oversampling for k = 10
    _check_hits(qcodes, codes, ids, dist)
    exact = _exact(queries, database, 10)
    rescored = _recall(_rescore(queries, database, ids, 10), exact)
    assert rescored >= 0.95 and _recall(ids[:, :10], exact) < rescored
    hnsw = faiss.IndexBinaryHNSW(32, 32)
    hnsw.add(codes)
    _, ids_hnsw = hnsw.search(qcodes, 100)
    assert _recall(_rescore(queries, database, ids_hnsw, 10), exact) >= 0.9


def test_milvus_lite_binary_field_with_a_float_field_for_rescoring(setup, tmp_path):
    pytest.importorskip("milvus_lite", reason="pip install 'hashlearn[milvus]'")
    from pymilvus import DataType, MilvusClient

    database, queries, codes, qcodes = setup
    # The README's recipe, connected as MilvusBinaryIndex connects (Milvus Lite's server can
    # open its socket after pymilvus's first attempt on a busy machine).
    from hashlearn.index.milvus import _connect

    client = _connect(MilvusClient, str(tmp_path / "vectors.db"), "", 60.0)
    try:
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("code", DataType.BINARY_VECTOR, dim=32)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=32)
        params = client.prepare_index_params()
        params.add_index("code", index_type="BIN_FLAT", metric_type="HAMMING")
        params.add_index("vec", index_type="FLAT", metric_type="COSINE")
        client.create_collection("docs", schema=schema, index_params=params)
        rows = [
            {"id": i, "code": c.tobytes(), "vec": v.tolist()}
            for i, (c, v) in enumerate(zip(codes, database))
        ]
        client.insert("docs", rows)
        hits = client.search(
            "docs",
            data=[c.tobytes() for c in qcodes],
            anns_field="code",
            limit=100,
            output_fields=["vec"],
            search_params={"metric_type": "HAMMING"},
        )
    finally:
        client.close()
    ids = np.array([[h["id"] for h in found] for found in hits])
    distances = np.array([[round(h["distance"]) for h in found] for found in hits])
    _check_hits(qcodes, codes, ids, distances)
    vectors = np.array([[h["entity"]["vec"] for h in found] for found in hits], np.float32)
    np.testing.assert_allclose(vectors, database[ids], atol=1e-6)  # the float field came back
    best = np.argsort(-np.einsum("qd,qcd->qc", queries, vectors), axis=1)[:, :10]
    found = np.take_along_axis(ids, best, axis=1)
    assert _recall(found, _exact(queries, database, 10)) >= 0.95


@pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")
def test_qdrant_local_collection_of_rotated_vectors_keeps_cosine():
    qdrant = pytest.importorskip("qdrant_client", reason="pip install qdrant-client")
    from qdrant_client import models

    X = _embeddings()
    database, queries = X[:1000], X[1000:1010]
    model = H2Q(random_state=0).fit(database)  # n_bits = d, no centring: W is a rotation
    mean, W = linear_form(model)
    assert not mean.any()
    client = qdrant.QdrantClient(":memory:")
    client.create_collection(
        "docs",
        vectors_config=models.VectorParams(size=32, distance=models.Distance.COSINE),
        quantization_config=models.BinaryQuantization(
            binary=models.BinaryQuantizationConfig(always_ram=True)
        ),
    )
    client.upload_collection("docs", vectors=(database - mean) @ W, ids=list(range(1000)))
    params = models.SearchParams(
        quantization=models.QuantizationSearchParams(rescore=True, oversampling=4.0)
    )
    found = [
        [p.id for p in client.query_points("docs", query=q, limit=10, search_params=params).points]
        for q in (queries - mean) @ W
    ]
    assert _recall(found, _exact(queries, database, 10)) >= 0.99  # same neighbours as unrotated
    stored = client.retrieve("docs", ids=list(range(5)), with_vectors=True)
    signs = np.packbits(np.array([p.vector for p in stored]) > 0, axis=1)
    np.testing.assert_array_equal(signs, model.encode(database[:5]))  # what BQ stores
