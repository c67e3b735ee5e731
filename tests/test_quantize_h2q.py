"""H²Q: losses against direct formulas, Householder gradients, both solvers, preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logsumexp
from sklearn.datasets import load_digits

from hashlearn.codes import pack
from hashlearn.quantize import H2Q, H2QL1, ITQ, SignQuantizer, h2q_solvers
from hashlearn.quantize.householder import householder_backward, householder_product
from hashlearn.quantize.losses import LOSSES, loss_and_grad, quantization_loss


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float64)


@pytest.fixture(scope="module")
def embedding(digits) -> np.ndarray:
    """A 16-d 'network embedding' of real data: PCA of the digits, not centred afterwards."""
    centred = digits - digits.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:16].T + 0.3  # an offset: deep embeddings need not be centred


def _direct_loss(Y: np.ndarray, loss: str) -> float:
    """Entry-by-entry formulas of REFERENCE.md, written independently of the library."""
    n, k = Y.shape
    if loss == "l2":
        return sum((y - np.sign(y)) ** 2 for y in Y.ravel()) / (n * k)
    if loss == "l1":
        return sum(abs(y - np.sign(y)) for y in Y.ravel()) / (n * k)
    if loss == "min_entry":
        return float(np.mean([logsumexp([-(y**2) for y in row]) for row in Y]))
    return sum(expit(y) * (1 - expit(y)) for y in Y.ravel()) / (n * k)


@pytest.mark.parametrize("loss", LOSSES)
def test_losses_match_direct_formula_and_finite_differences(loss, embedding):
    Y = embedding[:40, :8] / 4.0
    assert quantization_loss(Y, loss) == pytest.approx(_direct_loss(Y, loss), rel=1e-12)
    _, grad = loss_and_grad(Y, loss)
    step = 1e-6
    for i, j in [(0, 0), (3, 5), (39, 7)]:
        plus, minus = Y.copy(), Y.copy()
        plus[i, j] += step
        minus[i, j] -= step
        numeric = (quantization_loss(plus, loss) - quantization_loss(minus, loss)) / (2 * step)
        assert grad[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_losses_are_even_so_negating_the_rotation_is_free(embedding):
    for loss in LOSSES:
        assert quantization_loss(-embedding, loss) == pytest.approx(
            quantization_loss(embedding, loss), rel=1e-12
        )


def test_householder_product_and_backward():
    rng = np.random.default_rng(0)
    k = 7
    assert np.array_equal(householder_product(np.eye(k)), -np.eye(k))
    V = rng.standard_normal((k, k))
    R = householder_product(V)
    assert np.abs(R.T @ R - np.eye(k)).max() < 1e-12
    Z = rng.standard_normal((30, k))

    def objective(V):
        return quantization_loss(Z @ householder_product(V), "min_entry")

    _, grad_y = loss_and_grad(Z @ R, "min_entry")
    grad = householder_backward(V, Z.T @ grad_y)
    for i, j in [(0, 0), (2, 5), (6, 1)]:
        plus, minus = V.copy(), V.copy()
        plus[i, j] += 1e-6
        minus[i, j] -= 1e-6
        numeric = (objective(plus) - objective(minus)) / 2e-6
        assert grad[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-10)


@pytest.mark.parametrize("loss", LOSSES)
def test_fast_solver_orthogonal_and_never_worse_than_sign(loss, embedding):
    model = H2Q(loss=loss, random_state=0).fit(embedding)
    R = model.rotation_
    assert R.shape == (16, 16)
    assert np.abs(R.T @ R - np.eye(16)).max() < 1e-5
    Z = model._embed(embedding)
    assert np.allclose(np.linalg.norm(Z, axis=1), 4.0)  # rows rescaled to sqrt(k)
    start = quantization_loss(Z, loss)
    assert model.loss_ == pytest.approx(quantization_loss(Z @ R, loss), rel=1e-9)
    assert model.loss_ < start
    assert model.loss_curve_[0] == pytest.approx(start)
    assert model.n_iter_ == len(model.loss_curve_) - 1 > 0


def test_h2q_l2_reaches_itq_loss_on_the_same_input(embedding):
    Z = H2Q(random_state=0).fit(embedding)._embed(embedding)
    h2q = H2Q(random_state=0).fit(Z)
    itq = ITQ(center=False, random_state=0).fit(Z)
    assert h2q.loss_ <= quantization_loss(Z @ itq.rotation_, "l2")


def test_sgd_reproduction_decreases_the_loss(embedding):
    model = H2Q(solver="sgd", max_iter=3, random_state=0).fit(embedding)
    curve = model.loss_curve_
    assert len(curve) == 4 and model.n_iter_ == 3
    assert curve[-1] < curve[0]
    assert np.abs(model.rotation_.T @ model.rotation_ - np.eye(16)).max() < 1e-5


def test_sgd_with_zero_epochs_gives_sign_codes(embedding):
    model = H2Q(solver="sgd", max_iter=0).fit(embedding)
    assert np.array_equal(model.rotation_, np.eye(16))
    sign = SignQuantizer(projection="none", center=False).fit(embedding)
    assert np.array_equal(model.encode(embedding), sign.encode(embedding))


def test_determinism_under_a_fixed_seed(embedding):
    for params in ({"n_restarts": 2}, {"solver": "sgd", "max_iter": 1}):
        a = H2Q(random_state=3, **params).fit(embedding)
        b = H2Q(random_state=3, **params).fit(embedding)
        assert np.array_equal(a.rotation_, b.rotation_)
        assert a.loss_curve_ == b.loss_curve_


def test_pca_case_projects_then_rescales(digits):
    model = H2Q(n_bits=12, random_state=0).fit(digits)
    assert model.components_.shape == (64, 12) and model.mean_.shape == (64,)
    out = model.transform(digits)
    assert np.allclose(np.linalg.norm(out, axis=1), np.sqrt(12))
    assert np.array_equal(model.encode(digits), pack(out))
    deep = H2Q(random_state=0).fit(digits[:, 20:32] + 1.0)
    assert deep.mean_ is None and deep.components_ is None


def test_variants_only_change_the_default_loss(embedding):
    assert H2QL1().loss_name == "l1" and H2Q().loss_name == "l2"
    assert H2QL1(loss="bit_var").loss_name == "bit_var"
    a = H2QL1(random_state=0).fit(embedding)
    b = H2Q(loss="l1", random_state=0).fit(embedding)
    assert np.array_equal(a.rotation_, b.rotation_)


def test_fast_solver_reaches_a_lower_loss_than_the_papers_sgd():
    """The design claim of the default solver, on a small unstructured problem."""
    Z = np.random.default_rng(0).standard_normal((2000, 16))
    sgd = H2Q(solver="sgd", max_iter=30, random_state=0).fit(Z)
    fast = H2Q(random_state=0).fit(Z)
    assert fast.loss_ <= sgd.loss_ < sgd.loss_curve_[0]


def test_float32_input_is_supported(embedding):
    Z = embedding.astype(np.float32)
    model = H2Q(random_state=0).fit(Z)
    assert np.abs(model.rotation_.T @ model.rotation_ - np.eye(16)).max() < 1e-5
    assert model.loss_ < quantization_loss(model._embed(Z), "l2")
    itq = ITQ(n_bits=8, random_state=0).fit(Z)
    assert np.all(np.diff(itq.loss_curve_) <= 1e-6)


@pytest.fixture
def small_sample(monkeypatch):
    """Make the fast solver sample 512 rows (< 1,797 / 3), so the scaled path runs on digits."""
    monkeypatch.setattr(h2q_solvers, "SAMPLE_ROWS_MIN", 512)
    monkeypatch.setattr(h2q_solvers, "SAMPLE_ROWS_PER_BIT", 4)


@pytest.mark.parametrize("loss", ["l2", "min_entry"])
def test_sampled_fast_solver_beats_itq_at_full_dimension(small_sample, digits, loss):
    """At n_bits = d on real data the row-sampled solver still ends below ITQ's L2 loss
    (L2) and below the sign codes (every loss), with an orthogonal, seed-determined R."""
    X = digits[:, np.ptp(digits, axis=0) > 0]  # the digits' 61 non-constant pixels
    assert h2q_solvers.sample_rows(len(X), X.shape[1]) == 512 < len(X)
    a = H2Q(loss=loss, random_state=0).fit(X)
    b = H2Q(loss=loss, random_state=0).fit(X)
    assert np.array_equal(a.rotation_, b.rotation_) and a.loss_curve_ == b.loss_curve_
    R, Z = a.rotation_, a._embed(X)
    assert np.abs(R.T @ R - np.eye(len(R))).max() < 1e-5
    assert a.loss_ == pytest.approx(quantization_loss(Z @ R, loss), rel=1e-9)
    assert a.loss_ < quantization_loss(Z, loss)
    if loss == "l2":
        itq = ITQ(center=False, random_state=0).fit(Z)
        assert a.loss_ <= quantization_loss(Z @ itq.rotation_, "l2")


def test_sampled_path_by_default_on_a_mixture_embedding():
    """25,000 rows of a seeded 32-d mixture: over three default samples, so the candidates
    run on 8,192 rows and the finish on all; the L2 loss still ends at or below ITQ's."""
    rng = np.random.default_rng(0)
    centres = 1.5 * rng.standard_normal((20, 32))
    X = centres[rng.integers(0, 20, 25000)] + rng.standard_normal((25000, 32))
    assert h2q_solvers.sample_rows(*X.shape) < len(X)
    model = H2Q(random_state=0).fit(X)
    Z = model._embed(X)
    itq = ITQ(center=False, random_state=0).fit(Z)
    assert model.loss_ <= quantization_loss(Z @ itq.rotation_, "l2")
