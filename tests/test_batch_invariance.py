"""A row's projections and code do not depend on the batch it is encoded in (issue 18).

BLAS may change the last bits of ``X @ W`` with the batch shape, the thread count or the CPU,
and a projection within 1e-7 of 0 then flips its bit; every method's ``transform`` ends in a
row-independent product instead. This test encodes the same rows alone, in shuffled batches of
several sizes (C- and Fortran-ordered, float32 and float64) and in one batch, with 1 and 2
threads, and compares the float projections bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from hashlearn._rowwise import rowwise_matmul, rowwise_squared_norms
from hashlearn.base import needs_labels
from hashlearn.catalogue import available_methods, make_method

PARAMS = {"n_bits": 16, "random_state": 0}
KERNEL = {"n_anchors": 60}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(X))
    return X[order[:300]].astype(np.float32), y[order[:300]], X[order[300:420]]


def _fitted(name, digits):
    X, y, _ = digits
    model = make_method(name, **PARAMS)
    if "n_anchors" in model.get_params():
        model.set_params(**KERNEL)
    return model.fit(X, y) if needs_labels(model) else model.fit(X)


@pytest.mark.parametrize("name", available_methods())
def test_transform_of_a_row_does_not_depend_on_its_batch(name, digits):
    model = _fitted(name, digits)
    Q = digits[2]
    whole = model.transform(Q)
    alone = np.vstack([model.transform(Q[i : i + 1]) for i in range(len(Q))])
    assert np.array_equal(alone, whole)
    rng = np.random.RandomState(1)
    for size in (2, 7, 33, len(Q)):
        order = rng.permutation(len(Q))
        parts = [order[s : s + size] for s in range(0, len(Q), size)]
        got = np.empty_like(whole)
        for rows in parts:
            got[rows] = model.transform(np.asfortranarray(Q[rows]))
        assert np.array_equal(got, whole), f"batches of {size}"
    # The same values given as float32 are the same input to every method's float64 path.
    Q32 = Q.astype(np.float32)
    assert np.array_equal(model.transform(Q32[::-1])[::-1], model.transform(Q32))
    codes = model.encode(Q)
    assert np.array_equal(np.vstack([model.encode(Q[i : i + 1]) for i in range(len(Q))]), codes)
    for threads in (1, 2):
        numba_threads = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            with threadpool_limits(limits=threads):
                assert np.array_equal(model.transform(Q), whole), f"{threads} thread(s)"
                assert np.array_equal(model.encode(Q), codes), f"{threads} thread(s)"
        finally:
            numba.set_num_threads(numba_threads)


def test_rowwise_matmul_matches_a_float64_product_and_is_row_independent():
    rng = np.random.RandomState(0)
    A = rng.standard_normal((203, 67)).astype(np.float32)
    W = rng.standard_normal((67, 300))
    full = rowwise_matmul(A, W)
    np.testing.assert_allclose(full, A.astype(np.float64) @ W, rtol=1e-12, atol=1e-12)
    rows = [5, 0, 202, 77]
    assert np.array_equal(rowwise_matmul(A[rows], W), full[rows])
    assert np.array_equal(rowwise_matmul(np.asfortranarray(A[::-1]), W), full[::-1])
    np.testing.assert_allclose(
        rowwise_squared_norms(A), (A.astype(np.float64) ** 2).sum(axis=1), rtol=1e-12
    )
    assert rowwise_matmul(A[:0], W).shape == (0, 300)
    assert np.array_equal(rowwise_matmul(A[:, :0], W[:0]), np.zeros((203, 300)))


@pytest.mark.parametrize("hidden", [0, 32])
def test_deep_model_over_features_encodes_each_row_alone(hidden):
    """A feature-input deep model (the ``mlp`` backbone: linear or one-hidden-layer head) gives
    each row the same continuous code alone, in shuffled batches and under 1 or 2 torch
    threads, and the row-wise path computes the network torch trained."""
    import torch

    from hashlearn.data import load_dataset
    from hashlearn.deep import TrainConfig, train_on_dataset
    from hashlearn.deep.features import run_model

    ds = load_dataset("digits", progress=False)
    cfg = TrainConfig(loss="hashnet", quantization="hswd", n_bits=16, backbone="mlp",
                      hidden=hidden, epochs=1, batch_size=64, patience=0)  # fmt: skip
    hasher = train_on_dataset(cfg, ds, progress=False)
    Q = ds.query.X[:90]
    whole = hasher.transform(Q)
    spec = hasher.config["input"]
    by_torch = run_model(hasher.network, Q, "features", mean=spec["mean"], std=spec["std"])
    np.testing.assert_allclose(whole, by_torch, rtol=1e-4, atol=1e-5)
    assert np.array_equal(np.vstack([hasher.transform(Q[i : i + 1]) for i in range(len(Q))]), whole)
    order = np.random.RandomState(2).permutation(len(Q))
    got = np.empty_like(whole)
    for s in range(0, len(Q), 7):
        got[order[s : s + 7]] = hasher.transform(Q[order[s : s + 7]])
    assert np.array_equal(got, whole)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert np.array_equal(hasher.transform(Q), whole), f"{threads} torch thread(s)"
    finally:
        torch.set_num_threads(before)
