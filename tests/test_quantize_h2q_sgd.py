"""H²Q's SGD as the authors run it: reflection order and the epoch of lowest validation loss
(Lucas-Schwengber/h2q src/models/H2Q/train.py, src/utils/architectures/FAST_HPP.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn.quantize import H2Q
from hashlearn.quantize.h2q_solvers import solve_sgd
from hashlearn.quantize.losses import quantization_loss

torch = pytest.importorskip("torch")


def authors_order_sgd(Z, epochs, lr, batch_size, seed, reverse=False):
    """Their parametrisation written independently with autograd: columns v_i of a weight
    matrix starting at I, the layer computing (H(v_1) ⋯ H(v_k) Zᵀ)ᵀ, plain SGD on L2."""
    n, k = Z.shape
    weights = torch.eye(k, dtype=torch.float64, requires_grad=True)
    rng = np.random.RandomState(seed)
    Zt = torch.tensor(Z)

    def forward(Z_batch):
        P = torch.eye(k, dtype=torch.float64)
        columns = range(k - 1, -1, -1) if reverse else range(k)
        for i in columns:
            u = weights[:, i] / weights[:, i].norm()
            P = P - 2 * torch.outer(P @ u, u)
        return (P @ Z_batch.T).T

    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            Y = forward(Zt[order[start : start + batch_size]])
            loss = ((Y - torch.sign(Y)) ** 2).mean()
            (grad,) = torch.autograd.grad(loss, weights)
            with torch.no_grad():
                weights -= lr * grad
    with torch.no_grad():
        return forward(Zt).numpy()


def _embedding(seed, n=240, k=8):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, k)) @ rng.standard_normal((k, k))
    return Z * (np.sqrt(k) / np.linalg.norm(Z, axis=1, keepdims=True))


def test_sgd_applies_the_reflections_in_the_authors_order():
    Z = _embedding(0)
    result = solve_sgd(
        Z, "l2", epochs=2, learning_rate=0.5, batch_size=64, rng=np.random.RandomState(3)
    )
    theirs = authors_order_sgd(Z, epochs=2, lr=0.5, batch_size=64, seed=3)
    # Our rotation is the negated product (identity = sign codes); every loss is even.
    np.testing.assert_allclose(Z @ result.rotation, -theirs, atol=1e-9)
    other = authors_order_sgd(Z, epochs=2, lr=0.5, batch_size=64, seed=3, reverse=True)
    assert np.abs(other - theirs).max() > 1e-3  # the order matters: the test can tell


def test_sgd_keeps_the_epoch_of_lowest_validation_loss():
    Z, Z_val = _embedding(1), _embedding(2)[:, ::-1].copy()  # validation from elsewhere
    epochs = 8
    model = H2Q(solver="sgd", max_iter=epochs, learning_rate=2.0, random_state=0)
    model.fit(Z, X_val=Z_val)
    val_losses, rotations = [], []
    for e in range(1, epochs + 1):  # the same seeded run, stopped after e epochs
        stopped = H2Q(solver="sgd", max_iter=e, learning_rate=2.0, random_state=0).fit(Z)
        rotations.append(stopped.rotation_)
        val_losses.append(quantization_loss(Z_val @ stopped.rotation_, "l2"))
    best = int(np.argmin(val_losses))
    assert model.best_epoch_ == best + 1
    assert best + 1 < epochs  # the data make the choice matter
    np.testing.assert_allclose(model.rotation_, rotations[best], atol=1e-12)
    assert model.loss_ == pytest.approx(model.loss_curve_[best + 1])
    no_val = H2Q(solver="sgd", max_iter=epochs, learning_rate=2.0, random_state=0).fit(Z)
    assert no_val.best_epoch_ == epochs  # without validation data: the last epoch
