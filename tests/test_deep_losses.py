"""Deep hashing similarity losses: gradients, values against loop formulas, label formats, errors.

Every registered loss goes through the generic checks; ``REFERENCES`` holds a direct
double-loop implementation of each paper formula on Python floats.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep.losses import available_losses, get_loss  # noqa: E402

N_BITS, N_CLASSES, BATCH = 8, 3, 6


def _batch(n=BATCH, k=N_BITS, seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randn(n, k, generator=g, dtype=torch.float64).tanh()
    ids = torch.tensor([0, 1, 2, 0, 1, 0, 2, 1][:n])
    return codes, ids


def _multi_hot(rows, c=N_CLASSES):
    y = torch.zeros(len(rows), c, dtype=torch.float64)
    for i, r in enumerate(rows):
        y[i, list(r)] = 1.0
    return y


def _sim(yi, yj):
    return 1.0 if any(a > 0 and b > 0 for a, b in zip(yi, yj)) else 0.0


def _pairs(n):
    return [(i, j) for i in range(n) for j in range(n) if i != j]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


# ---------------------------------------------------------------- direct formulas
def ref_dpsh(loss, u, y):
    total = 0.0
    for i, j in _pairs(len(u)):
        theta = 0.5 * _dot(u[i], u[j])
        total += math.log1p(math.exp(theta)) - _sim(y[i], y[j]) * theta
    return total / len(_pairs(len(u)))


REFERENCES = {"dpsh": ref_dpsh}
# Losses whose value depends only on the pair similarity matrix, so multi-label data with the
# same similarity structure as single-label data gives the same loss.
PAIRWISE_ONLY = {"dpsh"}


def _loss(name, **kw):
    return get_loss(name, N_BITS, N_CLASSES, **kw).double()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_value_matches_direct_formula(name):
    loss = _loss(name)
    codes, ids = _batch()
    y = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    y[0, 2] = 1.0  # one multi-label item
    expected = REFERENCES[name](loss, codes.tolist(), y.tolist())
    assert loss(codes, y).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", available_losses())
def test_gradcheck_float64(name):
    loss = _loss(name)
    codes, ids = _batch(4)
    y = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    codes.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u: loss(u, y), (codes,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(lambda u: loss.quantization_penalty(u), (codes,),
                                    eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", available_losses())
def test_integer_ids_equal_one_hot(name):
    loss = _loss(name)
    codes, ids = _batch()
    one_hot = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    assert loss(codes, ids).item() == pytest.approx(loss(codes, one_hot).item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(PAIRWISE_ONLY))
def test_multi_label_with_single_label_structure_agrees(name):
    """Class c of the single-label batch becomes the label set {2c, 2c+1} of a 6-class one."""
    codes, ids = _batch()
    single = get_loss(name, N_BITS, N_CLASSES).double()
    multi = get_loss(name, N_BITS, 2 * N_CLASSES).double()
    y_multi = _multi_hot([(2 * c, 2 * c + 1) for c in ids.tolist()], 2 * N_CLASSES)
    assert multi(codes, y_multi).item() == pytest.approx(single(codes, ids).item(), rel=1e-12)


@pytest.mark.parametrize("name", available_losses())
def test_bad_batches_raise_clear_errors(name):
    loss = _loss(name)
    codes, ids = _batch()
    one_hot = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    with pytest.raises(HashlearnInputError, match="empty batch"):
        loss(codes[:0], one_hot[:0])
    with pytest.raises(HashlearnInputError, match="n_classes"):
        loss(codes, torch.zeros(BATCH, N_CLASSES + 1, dtype=torch.float64))
    with pytest.raises(HashlearnInputError, match="rows"):
        loss(codes, one_hot[:-1])
    with pytest.raises(HashlearnInputError, match="n_bits"):
        loss(codes[:, :-1], one_hot)
    with pytest.raises(HashlearnInputError, match="class ids"):
        loss(codes, torch.full((BATCH,), N_CLASSES))


@pytest.mark.parametrize("name", available_losses())
def test_single_item_batch_gives_finite_loss(name):
    loss = _loss(name)
    codes, ids = _batch(1)
    value = loss(codes.requires_grad_(True), ids)
    assert torch.isfinite(value)
    value.backward()


def test_registry_errors():
    with pytest.raises(HashlearnInputError, match="unknown loss"):
        get_loss("nope", 8, 2)
    with pytest.raises(HashlearnInputError, match="unknown argument"):
        get_loss("dpsh", 8, 2, margin=3)
    with pytest.raises(HashlearnInputError, match="n_bits"):
        get_loss("dpsh", 0, 2)
    loss = get_loss("dpsh", 8, 2, n_train=100, random_state=3)
    assert loss.loss_name == "dpsh" and loss.activation in ("tanh", "identity", "sign_ste")
