"""CEL, DSH, HashNet's continuation, the DPSH/DSDH pair memory and the authors' defaults."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep.losses import get_loss  # noqa: E402
from hashlearn.deep.losses.hyp2 import welch_bound  # noqa: E402
from hashlearn.deep.quantization import ContinuationQuantization, get_quantization  # noqa: E402


def _data(n=10, k=8, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, k, generator=g, dtype=torch.float64)
    ids = torch.arange(n) % c
    return u, ids


def test_cel_is_cosine_embedding_loss_and_rotation_invariant():
    u, ids = _data(12, 16, 4)
    loss = get_loss("cel", 16, 4).double()
    i, j = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    keep = i != j
    target = torch.where(ids[i[keep]] == ids[j[keep]], 1.0, -1.0).double()
    # 16 bits, 4 classes: the H²Q code table's separation at [16][2] is -0.25
    expected = torch.nn.CosineEmbeddingLoss(margin=-0.25)(u[i[keep]], u[j[keep]], target)
    assert loss(u, ids).item() == pytest.approx(expected.item(), rel=1e-12)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)).double())
    assert loss(u @ q, ids).item() == pytest.approx(expected.item(), rel=1e-10)
    assert loss.rotation_invariant and loss.margin == -0.25
    assert get_loss("orthohash", 16, 4).loss_name == "orthohash"


def test_dsh_formula_margin_and_l1_penalty():
    u, ids = _data(6, 4, 2)
    loss = get_loss("dsh", 4, 2).double()
    assert loss.margin == 8.0 and loss.default_quantization_weight == 0.01
    total = 0.0
    for a in range(6):
        for b in range(6):
            if a != b:
                d2 = float(((u[a] - u[b]) ** 2).sum())
                s = float(ids[a] == ids[b])
                total += 0.5 * s * d2 + 0.5 * (1 - s) * max(0.0, 8.0 - d2)
    assert loss(u, ids).item() == pytest.approx(total / 30, rel=1e-12)
    expected_pen = float((u.abs() - 1).abs().sum(1).mean())
    assert loss.quantization_penalty(u).item() == pytest.approx(expected_pen, rel=1e-12)
    assert get_loss("dsh", 4, 2, margin=24).margin == 24.0


def test_hashnet_beta_schedule_is_the_authors():
    """h2q: the H²Q code's ``(1 + batch_iter // 200) ** 0.5`` with ``batch_iter`` 0-based (our
    iteration ``t`` is 1-based); hswd: the HSWD code's ``(epoch // 20 + 1) ** 0.5`` per epoch."""
    loss = get_loss("hashnet", 16, 4)
    for t in (1, 2, 200, 201, 400, 401, 5000):
        assert loss.beta(t) == pytest.approx((1 + (t - 1) // 200) ** 0.5)
    hswd = get_loss("hashnet", 16, 4, variant="hswd")
    for epoch in (1, 20, 21, 40, 41, 200):
        assert hswd.beta(12345, epoch) == pytest.approx(((epoch - 1) // 20 + 1) ** 0.5)
    assert (hswd.alpha, hswd.pairs, loss.alpha, loss.pairs) == (0.1, "memory", 10 / 16, "batch")
    custom = get_loss("hashnet", 16, 4, beta_step=10, beta_gamma=0.1, beta_power=1.0)
    assert custom.beta(26) == pytest.approx(3.0)
    with pytest.raises(HashlearnInputError, match="beta_step"):
        get_loss("hashnet", 16, 4, beta_step=0)
    with pytest.raises(HashlearnInputError, match="variant"):
        get_loss("hashnet", 16, 4, variant="paper")


def test_hashnet_penalty_is_continuation_and_differs_from_none():
    loss = get_loss("hashnet", 8, 2)
    term = get_quantization("penalty", loss=loss)
    assert isinstance(term, ContinuationQuantization)
    term.set_iteration(801)
    assert term.activation_scale == pytest.approx(math.sqrt(5.0))
    assert term(torch.ones(3, 8)).item() == 0.0
    assert getattr(get_quantization("none", loss=loss), "activation_scale", 1.0) == 1.0
    with pytest.raises(HashlearnInputError, match="continuation"):
        get_quantization("penalty", weight=0.5, loss=loss)
    # Through the objective the codes the loss sees are tanh(β a), not tanh(a).
    from hashlearn.deep.model import HashNetwork
    from hashlearn.deep.objective import Objective

    class _Identity(torch.nn.Module):
        out_features = 8

        def forward(self, x):
            return x

    torch.manual_seed(0)
    net = HashNetwork(_Identity(), 8, activation="tanh")
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 0, 1, 0, 1])
    _, sim_on, _, z_on = Objective(net, loss, term, True)(x, y, torch.arange(6))
    _, sim_off, _, z_off = Objective(net, loss, get_quantization("none"), True)(
        x, y, torch.arange(6)
    )
    a = net.head(x).detach()
    assert torch.allclose(z_on, torch.tanh(math.sqrt(5.0) * a))
    assert torch.allclose(z_off, torch.tanh(a)) and sim_on != sim_off


@pytest.mark.parametrize("name", ["dpsh", "dsdh"])
def test_memory_pairs_equal_in_batch_pairs_when_the_batch_is_the_training_set(name):
    u, ids = _data(10, 8, 3)
    memory = get_loss(name, 8, 3, n_train=10).double()
    batch = get_loss(name, 8, 3, n_train=10, pairs="batch").double()
    order = torch.randperm(10, generator=torch.Generator().manual_seed(2))
    u1 = u[order].clone().requires_grad_(True)
    u2 = u[order].clone().requires_grad_(True)
    v1 = memory(u1, ids[order], order)
    v2 = batch(u2, ids[order], order)
    v1.backward()
    v2.backward()
    assert v1.item() == pytest.approx(v2.item(), rel=1e-12)
    assert torch.allclose(u1.grad, u2.grad, rtol=1e-10, atol=1e-14)


def test_memory_pairs_use_the_latest_outputs_of_every_item_seen():
    u, ids = _data(10, 8, 3)
    loss = get_loss("dpsh", 8, 3, n_train=10).double()
    first, second = torch.arange(0, 6), torch.arange(4, 10)
    loss(u[first], ids[first], first)
    newer = u[second] * 0.5
    value = loss(newer, ids[second], second).item()
    latest = u.clone()
    latest[second] = newer  # the batch's own rows are its current outputs
    terms = []
    for a, i in enumerate(second.tolist()):
        for j in range(10):
            if j != i:
                theta = 0.5 * float(newer[a] @ latest[j])
                s = float(ids[i] == ids[j])
                terms.append(math.log1p(math.exp(theta)) - s * theta)
    assert value == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    assert bool(loss.memory.filled.all())
    assert {"memory.codes", "memory.labels", "memory.filled"} <= set(loss.state_dict())


def test_memory_pairs_need_n_train_and_valid_indices():
    u, ids = _data(4, 8, 2)
    with pytest.raises(HashlearnInputError, match="n_train"):
        get_loss("dpsh", 8, 2)(u.float(), ids, torch.arange(4))
    with pytest.raises(HashlearnInputError, match="indices"):
        get_loss("dpsh", 8, 2, n_train=3)(u.float(), ids, torch.arange(4))
    with pytest.raises(HashlearnInputError, match="unknown pairs"):
        get_loss("dpsh", 8, 2, pairs="all")


def test_authors_defaults():
    hyp2 = get_loss("hyp2", 8, 10)
    assert hyp2.threshold == 0.0  # the H²Q code table at [8][4]
    assert get_loss("hyp2", 64, 10).threshold == -0.03125
    assert get_loss("hyp2", 64, 10, threshold=0.1).threshold == 0.1
    welch = get_loss("hyp2", 8, 10, threshold="welch").threshold
    assert welch == welch_bound(16, 8) == pytest.approx(math.sqrt(8 / (8 * 15)))
    with pytest.raises(HashlearnInputError, match="table"):
        get_loss("hyp2", 16, 10, threshold="nope")
    wglhh = get_loss("wglhh", 16, 10)
    assert wglhh.alpha == 0.1 and wglhh.attention
    dsdh = get_loss("dsdh", 16, 10, n_train=5)
    assert (dsdh.nu, dsdh.eta, dsdh.mu, dsdh.n_dcc) == (1.0, 55.0, 1.0, 10)
