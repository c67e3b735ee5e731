"""ADSH: its loss against the formula, the V-step, the query subsets, and training on digits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.codes import pack  # noqa: E402
from hashlearn.deep.losses import get_loss  # noqa: E402
from hashlearn.metrics import mean_average_precision  # noqa: E402


def _soft_similarity(ya, yb):
    s = (ya[:, None] == yb[None, :]).double()
    r = s.sum() / (1 - s).sum()
    return s * (1 + r) - r


def test_loss_matches_the_formula_and_stores_the_outputs():
    n, k, c = 12, 6, 3
    g = torch.Generator().manual_seed(0)
    ids = torch.arange(n) % c
    loss = get_loss("adsh", k, c, n_train=n, gamma=5.0).double()
    loss.set_training_labels(ids)
    v = torch.where(torch.randn(n, k, generator=g) > 0, 1.0, -1.0).double()
    loss.database_codes.copy_(v)
    idx = torch.tensor([1, 4, 7, 10])
    u = torch.randn(4, k, generator=g, dtype=torch.float64).tanh()
    s = _soft_similarity(ids[idx], ids)
    expected = (((u @ v.T - k * s) ** 2).sum() + 5.0 * ((v[idx] - u) ** 2).sum()) / (n * 4)
    assert loss(u, ids[idx], idx).item() == pytest.approx(expected.item(), rel=1e-12)
    assert torch.equal(loss.query_outputs[idx], u)


def _objective(loss, omega, v):
    u = loss.query_outputs[omega].double()
    ids = loss.database_labels.argmax(1)
    s = _soft_similarity(ids[omega], ids)
    k = loss.n_bits
    return float(((u @ v.T - k * s) ** 2).sum() + loss.gamma * ((v[omega] - u) ** 2).sum())


def test_v_step_lowers_the_objective_and_keeps_binary_codes():
    n, k, c = 60, 8, 4
    g = torch.Generator().manual_seed(1)
    ids = torch.arange(n) % c
    loss = get_loss("adsh", k, c, n_train=n, n_samples=20, gamma=10.0).double()
    loss.set_training_labels(ids)
    omega = loss.epoch_items(1)
    centres = torch.randn(c, k, generator=g, dtype=torch.float64)
    loss.query_outputs[omega] = (centres[ids[omega]] + 0.3 * torch.randn(20, k, generator=g)).tanh()
    start = torch.where(torch.randn(n, k, generator=g) > 0, 1.0, -1.0).double()
    loss.database_codes.copy_(start)
    before = _objective(loss, omega, start)
    loss.update_database_codes(omega)
    after = loss.database_codes.clone()
    assert set(after.unique().tolist()) <= {-1.0, 1.0}
    assert _objective(loss, omega, after) < before


def test_query_subsets_are_seeded_and_fixed_within_an_outer_iteration():
    loss = get_loss("adsh", 8, 2, n_train=50, n_samples=10, inner_epochs=3, random_state=4)
    first = loss.epoch_items(1)
    assert torch.equal(first, loss.epoch_items(3)) and len(first) == 10
    assert not torch.equal(first, loss.epoch_items(4))
    assert torch.equal(
        first, get_loss("adsh", 8, 2, n_train=50, n_samples=10, random_state=4).epoch_items(2)
    )
    for epoch in range(1, 4):  # the V-step runs after the third inner epoch only
        before = loss.database_codes.clone()
        loss.on_epoch_end()
        assert torch.equal(before, loss.database_codes) == (epoch < 3)


def test_bad_input_raises_clear_errors():
    with pytest.raises(HashlearnInputError, match="n_train"):
        get_loss("adsh", 8, 2)
    loss = get_loss("adsh", 8, 2, n_train=5)
    with pytest.raises(HashlearnInputError, match="indices"):
        loss(torch.zeros(2, 8), torch.tensor([0, 1]))
    with pytest.raises(HashlearnInputError, match="labels of all"):
        loss.set_training_labels(torch.tensor([0, 1]))
    with pytest.raises(HashlearnInputError, match="n_samples"):
        get_loss("adsh", 8, 2, n_train=5, n_samples=0)
    with pytest.raises(HashlearnInputError, match="similarity"):
        get_loss("adsh", 8, 2, n_train=5, similarity="cosine")


def test_adsh_on_digits_beats_random_codes():
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    order = np.random.default_rng(0).permutation(len(X))
    train, query = order[:600], order[600:800]
    Xtr, ytr = torch.from_numpy(X[train]).float(), torch.from_numpy(y[train])
    Xq = torch.from_numpy(X[query]).float()
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 16)
    with torch.no_grad():
        random_q, random_db = pack(layer(Xq).numpy()), pack(layer(Xtr).numpy())
    baseline = mean_average_precision(random_q, random_db, y[query], y[train])
    loss = get_loss("adsh", 16, 10, n_train=600, n_samples=200, gamma=200.0)
    loss.set_training_labels(ytr)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(1, 16):
        items = loss.epoch_items(epoch)
        for idx in items[torch.randperm(len(items), generator=gen)].split(64):
            value = loss(torch.tanh(layer(Xtr[idx])), ytr[idx], idx)
            opt.zero_grad()
            value.backward()
            opt.step()
        loss.on_epoch_end()
    with torch.no_grad():
        q = pack(layer(Xq).numpy())
    database = pack(loss.database_codes.numpy())  # the asymmetric protocol: learned V
    learned = mean_average_precision(q, database, y[query], y[train])
    network = mean_average_precision(q, pack(layer(Xtr).detach().numpy()), y[query], y[train])
    assert learned > baseline + 0.2, (baseline, learned)
    assert network > baseline + 0.1, (baseline, network)
