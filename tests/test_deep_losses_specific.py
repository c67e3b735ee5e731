"""Method-specific behaviour of the deep hashing losses: CSQ centres, GreedyHash STE, DSDH state."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep.losses import get_loss  # noqa: E402
from hashlearn.deep.losses.csq import hash_centers  # noqa: E402


def _hamming(a, b):
    return int(np.sum(a != b))


def test_csq_hadamard_centres_are_orthogonal_rows():
    centres = hash_centers(10, 8, "auto")
    assert centres.shape == (10, 8) and set(np.unique(centres)) == {-1.0, 1.0}
    # Rows of H_8 and -H_8: distance k/2 except a row and its own negation (distance k).
    for i, j in itertools.combinations(range(10), 2):
        assert _hamming(centres[i], centres[j]) in (4, 8)
    gram = centres[:8] @ centres[:8].T
    assert np.array_equal(gram, 8 * np.eye(8))


def test_csq_random_centres_balanced_distinct_and_seeded():
    centres = hash_centers(10, 12, "auto", random_state=3)  # 12 is not a power of two
    assert np.array_equal(centres, hash_centers(10, 12, "auto", random_state=3))
    assert (centres.sum(axis=1) == 0).all()
    assert min(_hamming(a, b) for a, b in itertools.combinations(centres, 2)) >= 3


def test_csq_unsupported_bits_raise_clear_errors():
    with pytest.raises(HashlearnInputError, match="more bits"):
        get_loss("csq", 4, 10)  # only 6 balanced 4-bit codes exist
    with pytest.raises(HashlearnInputError, match="power of two"):
        get_loss("csq", 12, 3, centers="hadamard")
    with pytest.raises(HashlearnInputError, match="power of two"):
        get_loss("csq", 8, 17, centers="hadamard")
    with pytest.raises(HashlearnInputError, match="centre scheme"):
        get_loss("csq", 8, 3, centers="kmeans")


def test_csq_multi_label_centre_is_sign_of_mean_with_seeded_ties():
    loss = get_loss("csq", 8, 3)
    table = loss.center_table
    labels = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    centres = loss.item_centers(labels)
    agree = table[0] == table[1]
    assert torch.equal(centres[0][agree], table[0][agree])
    assert torch.equal(centres[0][~agree], loss.tie_signs[~agree])
    assert torch.equal(centres[1], torch.sign(table.sum(0)))  # three ±1 values never tie
    assert torch.equal(centres[2], table[2])


def test_greedyhash_straight_through_gradient_and_trainable_classifier():
    loss = get_loss("greedyhash", 6, 3, random_state=1).double()
    g = torch.Generator().manual_seed(0)
    u = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1, 0])
    loss(u, y).backward()
    b = torch.where(u > 0, 1.0, -1.0).double().requires_grad_(True)
    logits = loss.classifier(b)
    torch.nn.functional.cross_entropy(logits, y).backward()
    assert torch.allclose(u.grad, b.grad)
    assert len(list(loss.parameters())) == 2
    same = get_loss("greedyhash", 6, 3, random_state=1)
    other = get_loss("greedyhash", 6, 3, random_state=2)
    assert torch.equal(
        same.classifier.weight, get_loss("greedyhash", 6, 3, random_state=1).classifier.weight
    )
    assert not torch.equal(same.classifier.weight, other.classifier.weight)


def _dsdh_objective(loss, b, w, u, y):
    return (
        loss.mu * ((y - b @ w) ** 2).sum()
        + loss.nu * (w**2).sum()
        + loss.eta * ((b - u) ** 2).sum()
    ).item()


def test_dsdh_epoch_update_lowers_its_objective_and_feeds_the_penalty():
    n, k, c = 40, 6, 3
    g = torch.Generator().manual_seed(0)
    y_ids = torch.arange(n) % c
    y = torch.nn.functional.one_hot(y_ids, c).double()
    u = (
        torch.randn(n, k, generator=g, dtype=torch.float64)
        + y @ torch.randn(c, k, generator=g, dtype=torch.float64)
    ).tanh()
    loss = get_loss("dsdh", k, c, n_train=n)
    assert not bool(loss.state_ready)
    b0 = torch.where(u > 0, 1.0, -1.0).to(u)
    w0 = torch.linalg.solve(b0.T @ b0 + (loss.nu / loss.mu) * torch.eye(k, dtype=u.dtype), b0.T @ y)
    before = _dsdh_objective(loss, b0, w0, u, y)
    loss.on_epoch_end(u, y_ids)
    b, w = loss.binary_codes.double(), loss.classifier.double()
    assert set(b.unique().tolist()) <= {-1.0, 1.0} and bool(loss.state_ready)
    assert _dsdh_objective(loss, b, w, u, y) <= before + 1e-9
    # After the update the penalty pulls each item towards its stored code.
    idx = torch.tensor([3, 7, 11])
    loss(u[idx].float(), y_ids[idx], idx)
    expected = ((u[idx] - b[idx]) ** 2).mean().item()
    assert loss.quantization_penalty(u[idx].float()).item() == pytest.approx(expected, rel=1e-5)
    state = loss.state_dict()
    assert {"binary_codes", "classifier", "state_ready"} <= set(state)


def test_dbdh_straight_through_gradient_equals_binary_likelihood_gradient():
    loss = get_loss("dbdh", 6, 3, variant="ste").double()
    g = torch.Generator().manual_seed(1)
    u = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1, 0])
    loss(u, y).backward()
    b = torch.where(u > 0, 1.0, -1.0).double().requires_grad_(True)
    get_loss("dpsh", 6, 3, scale=2.0 / 6).double()(b, y).backward()
    assert torch.allclose(u.grad, b.grad) and u.grad.abs().sum() > 0
