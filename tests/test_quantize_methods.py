"""LSH, PCA hashing, ITQ, random rotation; persistence, registry and bad input for every method."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

from hashlearn._linalg import polar, random_orthogonal
from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import make_method
from hashlearn.codes import hamming_distances
from hashlearn.quantize import ITQ, LSH, PCAHash, RandomRotation, SignQuantizer
from hashlearn.quantize.losses import quantization_loss

NEW_METHODS = ("lsh", "pcah", "itq", "h2q", "h2q-l1", "h2q-min-entry", "h2q-bit-var",
               "random-rotation")  # fmt: skip
ROTATION_METHODS = ("itq", "h2q", "h2q-l1", "h2q-min-entry", "h2q-bit-var", "random-rotation")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.data.astype(np.float64), data.target


def test_procrustes_is_the_non_transposed_minimiser():
    rng = np.random.RandomState(0)
    V = rng.standard_normal((200, 6))
    B = np.sign(V @ random_orthogonal(6, rng) + 0.5 * rng.standard_normal((200, 6)))
    R = polar(V.T @ B)

    def error(Q):
        return np.linalg.norm(B - V @ Q)

    assert np.abs(R.T @ R - np.eye(6)).max() < 1e-12
    assert error(R) < error(R.T)  # the transposition bug of REFERENCE.md
    assert all(error(R) <= error(random_orthogonal(6, rng)) for _ in range(200))


def test_itq_loss_never_increases(digits):
    X, _ = digits
    model = ITQ(n_bits=16, n_iter=30, random_state=0).fit(X)
    curve = np.array(model.loss_curve_)
    assert len(curve) == model.n_iter_ + 1 and model.n_iter_ > 5
    assert np.all(np.diff(curve) <= 1e-12)
    assert curve[-1] < curve[0]
    V = (X - model.mean_) @ model.components_
    assert curve[-1] == pytest.approx(quantization_loss(V @ model.rotation_, "l2"))
    assert np.abs(model.rotation_.T @ model.rotation_ - np.eye(16)).max() < 1e-5


def test_itq_beats_pca_and_random_rotation_in_quantization_loss(digits):
    X, _ = digits
    itq = ITQ(n_bits=16, random_state=0).fit(X)
    V = (X - itq.mean_) @ itq.components_
    random = quantization_loss(V @ random_orthogonal(16, np.random.RandomState(1)), "l2")
    assert itq.loss_curve_[-1] < min(quantization_loss(V, "l2"), random)


def test_lsh_and_pcah(digits):
    X, _ = digits
    lsh = LSH(n_bits=100, random_state=0).fit(X)  # more bits than features is fine for LSH
    assert lsh.encode(X).shape == (len(X), 13)
    assert not np.array_equal(lsh.encode(X), LSH(n_bits=100, random_state=1).fit(X).encode(X))
    pcah = PCAHash(n_bits=16).fit(X)
    sign = SignQuantizer(n_bits=16, projection="pca").fit(X)
    assert np.array_equal(pcah.encode(X), sign.encode(X))


def test_random_rotation_preserves_distances_of_the_embedding(digits):
    X, _ = digits
    model = RandomRotation(n_bits=16, random_state=0).fit(X)
    out = model.transform(X[:50])
    embedded = model._embed(X[:50])
    assert np.allclose(out @ out.T, embedded @ embedded.T)
    assert not np.allclose(model.rotation_, np.eye(16))


@pytest.mark.parametrize("name", NEW_METHODS)
def test_registry_clone_and_save_load_round_trip(name, digits, tmp_path):
    X, _ = digits
    X = X[:300]
    model = make_method(name, n_bits=12, random_state=0)
    assert model.get_params()["random_state"] == 0
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    model.fit(X)
    path = tmp_path / f"{name}.npz"
    model.save(path)
    loaded = type(model).load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.encode(X), model.encode(X))
    assert np.allclose(loaded.transform(X), model.transform(X))
    if name in ROTATION_METHODS:
        assert np.abs(loaded.rotation_.T @ loaded.rotation_ - np.eye(12)).max() < 1e-5


@pytest.mark.parametrize("name", ROTATION_METHODS)
def test_rotations_keep_hamming_ranking_meaningful(name, digits):
    """Codes of the same class are closer than codes of different classes (real data)."""
    X, y = digits
    model = make_method(name, n_bits=16, random_state=0).fit(X[:600])
    codes = model.encode(X[600:900])
    dist = hamming_distances(codes, codes)
    same = y[600:900, None] == y[None, 600:900]
    assert dist[same].mean() < dist[~same].mean() - 1.0


@pytest.mark.parametrize("name", ("pcah", "itq", "h2q"))
def test_clear_errors_on_bad_input(name, digits):
    X, _ = digits
    method = make_method(name, n_bits=8, random_state=0)
    with pytest.raises(HashlearnInputError, match="larger than the 5 available"):
        make_method(name, n_bits=8).fit(X[:, 10:15])
    with pytest.raises(HashlearnInputError, match="samples but n_bits=8"):
        method.fit(X[:5, 10:30])
    bad = X[:100, :].copy()
    bad[3, 4] = np.nan
    with pytest.raises(HashlearnInputError, match="NaN or infinite"):
        method.fit(bad)
    bad[3, 4] = np.inf
    with pytest.raises(HashlearnInputError, match="NaN or infinite"):
        method.fit(bad)
    few_directions = np.repeat(X[:200, 20:24], 4, axis=1)  # 16 columns, rank 4
    few_directions[:, 0] = 7.0
    with pytest.raises(HashlearnInputError, match="directions of non-zero variance"):
        make_method(name, n_bits=8).fit(few_directions)


def test_constant_column_in_the_deep_case_is_allowed(digits):
    # Full-dimension rotations accept dead columns (see tests/test_quantize_full_dimension.py).
    X, _ = digits
    Z = X[:200, 20:28].copy()
    Z[:, 2] = 1.5
    for method in (make_method("h2q", random_state=0), ITQ(), RandomRotation()):
        assert method.fit(Z).rotation_.shape == (8, 8)


def test_unknown_loss_solver_and_bad_parameters(digits):
    from hashlearn.quantize import H2Q

    X = digits[0][:100, 20:30]
    with pytest.raises(
        HashlearnInputError, match="'loss' parameter of H2Q must be a str among .* Got 'l3'"
    ):
        H2Q(loss="l3").fit(X)
    with pytest.raises(
        HashlearnInputError, match="'solver' parameter of H2Q must be a str among .* Got 'adam'"
    ):
        H2Q(solver="adam").fit(X)
    with pytest.raises(HashlearnInputError, match="n_restarts"):
        H2Q(n_restarts=0).fit(X)
    with pytest.raises(HashlearnInputError, match="n_iter"):
        ITQ(n_iter=-1).fit(X)
    with pytest.raises(HashlearnInputError, match="'n_bits' parameter of H2Q must be an int"):
        H2Q(n_bits=0).fit(X)
