"""Each deep loss against its authors' expression, written here in plain torch from their code.

Sources: Lucas-Schwengber/h2q ``src/utils/losses.py`` and ``src/models/QS/lightning_module.py``
(H²Q), khoadoan106/single_loss_quantization ``python/HashNet.py`` (HSWD) and
swuxyj/DeepHash-pytorch ``DCH.py`` / ``DBDH.py``. The one convention of ours kept throughout:
pairs ``(i, i)`` (an item with itself) are left out, so the authors' pair matrices are averaged
over ``i ≠ j`` here (``_offdiag_mean``).
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hashlearn.deep.losses import get_loss  # noqa: E402
from hashlearn.deep.losses.codetable import code_separation  # noqa: E402
from hashlearn.deep.quantization import get_quantization  # noqa: E402

K, C, B, N = 16, 5, 24, 60


def _data(seed=0, n=B, k=K, c=C, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    u = scale * torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.randint(0, c, (n,), generator=g), c).double()
    return u, y


def _offdiag_mean(m):
    keep = ~torch.eye(m.shape[0], dtype=torch.bool)
    return m[keep].mean()


def _cos_matrix(z):  # torch.nn.CosineSimilarity()(Z[:, :, None], Z.t()[None, :, :])
    return torch.nn.CosineSimilarity()(z[:, :, None], z.t()[None, :, :])


def test_hashnet_h2q_variant_is_the_h2q_code():
    u, y = _data()
    _, y_train = _data(1, n=N)
    z = torch.tanh(u)
    loss = get_loss("hashnet", K, C).double()
    loss.set_training_labels(y_train)
    # the authors: p = np.mean(labels @ labels.T > 0) over the training set
    p = (y_train @ y_train.T > 0).double().mean().item()
    sm = (y @ y.T > 0).double()
    w = sm / p + (1 - sm) / (1 - p)
    alpha = 10 / K
    sims = z @ z.t()
    theirs = -(w * (alpha * sm * sims + torch.nn.functional.logsigmoid(-alpha * sims)))
    assert loss(z, y).item() == pytest.approx(_offdiag_mean(theirs).item(), rel=1e-10)


def test_hashnet_hswd_variant_is_the_hswd_code_with_its_memory():
    loss = get_loss("hashnet", K, C, variant="hswd", n_train=N).double()
    U, Y = torch.zeros(N, K, dtype=torch.float64), torch.zeros(N, C, dtype=torch.float64)
    u_all, y_all = _data(2, n=N)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    for start in range(0, N, 20):  # one epoch fills every row; the last batch is compared
        ind = order[start : start + 20]
        u, y = torch.tanh(u_all[ind]), y_all[ind]
        ours = loss(u, y, ind).item()
        U[ind], Y[ind] = u, y  # the authors' HashNetLoss.forward, alpha = 0.1
        similarity = (y @ Y.t() > 0).double()
        dot = 0.1 * u @ U.t()
        exp_loss = (1 + (-dot.abs()).exp()).log() + dot.clamp(min=0) - similarity * dot
        keep = torch.ones_like(dot, dtype=torch.bool)
        keep[torch.arange(len(ind)), ind] = False  # our convention: no (i, i) pair
        pos, neg = keep & (similarity > 0), keep & (similarity <= 0)
        S1, S0 = pos.sum(), neg.sum()
        S = S0 + S1
        weighted = torch.where(pos, exp_loss * S / S1, exp_loss * S / S0)
    assert ours == pytest.approx((weighted[keep].sum() / S).item(), rel=1e-10)


def test_hashnet_hswd_keeps_its_continuation_under_hswd_and_swd():
    for variant, on_codes in (("hswd", False), ("h2q", True)):
        loss = get_loss("hashnet", K, C, variant=variant)
        for name in ("hswd", "swd", "h2q"):
            term = get_quantization(name, loss=loss, n_projections=4)
            term.set_iteration(10_000, epoch=45)
            expected = 3**0.5 if variant == "hswd" else (1 + 9999 // 200) ** 0.5
            assert term.activation_scale == pytest.approx(expected)
            if name != "h2q":
                assert term.on_pre_activation is not on_codes
    assert get_quantization("none", loss=loss).activation_scale == 1.0


def _cosdist(x, y):  # the H²Q code's cosdist
    eps = 1e-5
    return eps + (1 - torch.nn.CosineSimilarity()(x, y)) / 2 * (1 - 2 * eps)


def test_dch_h2q_variant_is_the_h2q_code():
    u, y = _data(4)
    _, y_train = _data(5, n=N)
    z = torch.tanh(u)
    loss = get_loss("dch", K, C, variant="h2q").double()
    loss.set_training_labels(y_train)
    p, gamma = (y_train @ y_train.T > 0).double().mean().item(), 10
    sm = (y @ y.T > 0).double()
    w = sm / p + (1 - sm) / (1 - p)
    d = K * _cosdist(z[:, :, None], z.t()[None, :, :])
    theirs = w * (sm * torch.log(d / gamma) + torch.log(1 + gamma / d))
    assert loss(z, y).item() == pytest.approx(_offdiag_mean(theirs).item(), rel=1e-10)
    quant = torch.mean(torch.log(1 + (K * _cosdist(z.abs(), z**0)) / gamma))
    assert loss.quantization_penalty(z).item() == pytest.approx(quant.item(), rel=1e-10)


def test_dch_default_is_deephash_pytorch():
    u, y = _data(6)
    z = torch.tanh(u)
    loss = get_loss("dch", K, C).double()
    gamma = 20.0

    def d(hi, hj):
        inner = hi @ hj.t()
        norm = (
            hi.pow(2).sum(dim=1, keepdim=True).pow(0.5)
            @ hj.pow(2).sum(dim=1, keepdim=True).pow(0.5).t()
        )
        cos = inner / norm.clamp(min=0.0001)
        return (1 - cos.clamp(max=0.99)) * K / 2

    s = (y @ y.t() > 0).double()
    keep = ~torch.eye(B, dtype=torch.bool)  # our convention; their w counts (i, i) as similar
    w = s * keep.sum() / (s * keep).sum() + (1 - s) * keep.sum() / ((1 - s) * keep).sum()
    cauchy = w * (s * torch.log(d(z, z) / gamma) + torch.log(1 + gamma / d(z, z)))
    assert loss(z, y).item() == pytest.approx(cauchy[keep].mean().item(), rel=1e-10)
    one = torch.ones(B, K, dtype=torch.float64)
    quant = torch.log(1 + d(z.abs(), one) / gamma).mean()
    assert loss.quantization_penalty(z).item() == pytest.approx(quant.item(), rel=1e-10)


def test_code_table_cells_and_cel_margin_are_the_h2q_codes():
    # cells of Lucas-Schwengber/h2q data/codetable.csv at [n_bits][ceil(log2 C)]
    for bits, classes, cell in (
        (16, 10, 0.0),
        (32, 10, 0.0),
        (48, 10, 0.0),
        (64, 10, -0.03125),
        (16, 4, -0.25),
        (12, 10, 0.0),
        (8, 2, -1.0),
        (8, 256, 0.75),
    ):
        assert code_separation(bits, classes) == pytest.approx(cell, abs=1e-9)
    u, y = _data(7, k=64, c=10)
    loss = get_loss("cel", 64, 10).double()
    sm = (y @ y.T > 0).double()
    cos = _cos_matrix(u)
    theirs = (1 - cos) * sm + (1 - sm) * torch.relu(cos - (-0.03125))
    assert loss(u, y).item() == pytest.approx(_offdiag_mean(theirs).item(), rel=1e-10)


@pytest.mark.parametrize("multi", [False, True])
def test_hyp2_is_the_h2q_code(multi):
    u, y = _data(8, k=32, c=10)
    if multi:
        y[::3, 1] = 1.0
    beta = 0.75
    loss = get_loss("hyp2", 32, 10, beta=beta).double()
    sep = 0.0  # the code table at [32][4]
    cos = _cos_matrix(u)
    smc = (y @ y.T <= 0).double()
    pair = torch.mean(smc * torch.relu(cos - sep)) / torch.mean(smc)
    P = torch.tanh(loss.proxies.detach())
    cp = torch.nn.CosineSimilarity()(u[:, :, None], P.t()[None, :, :])
    proxy = torch.mean(y * -cp) / torch.mean(y) + torch.mean(
        (1 - y) * torch.relu(cp - sep)
    ) / torch.mean(1 - y)
    theirs = beta * pair + proxy
    assert pair.item() > 0  # the pair term is on for single-label data
    # ours writes the proxy pull as 1 - cos (the paper's), theirs as -cos: 1 apart
    assert loss(u, y).item() - 1.0 == pytest.approx(theirs.item(), rel=1e-10, abs=1e-12)
    assert loss.parameter_lr == 1e-3


def test_dsdh_network_loss_has_no_code_term_by_default():
    loss = get_loss("dsdh", K, C, n_train=N)
    assert get_quantization("penalty", loss=loss).weight == 0.0
    assert get_quantization("penalty", loss=loss, weight=0.1).weight == 0.1


def test_dbdh_default_is_deephash_pytorch_with_its_memory():
    loss = get_loss("dbdh", K, C, n_train=N).double()
    U, Y = torch.zeros(N, K, dtype=torch.float64), torch.zeros(N, C, dtype=torch.float64)
    u_all, y_all = _data(9, n=N, scale=1.5)
    for start in range(0, N, 20):
        ind = torch.arange(start, start + 20)
        u, y = u_all[ind], y_all[ind]
        ours = loss(u, y, ind).item() + 0.1 * loss.quantization_penalty(u).item()
        u = u.clamp(min=-1, max=1)  # the authors' DPSHLoss.forward in DBDH.py
        U[ind], Y[ind] = u, y
        s = (y @ Y.t() > 0).double()
        ip = u @ U.t() * 0.5
        likelihood = (1 + (-(ip.abs())).exp()).log() + ip.clamp(min=0) - s * ip
        keep = torch.ones_like(ip, dtype=torch.bool)
        keep[torch.arange(20), ind] = False  # our convention: no (i, i) pair
        theirs = likelihood[keep].mean() + 0.1 * u.mean(dim=1).pow(2).mean()
    assert ours == pytest.approx(theirs.item(), rel=1e-10)
    assert math.isclose(get_loss("dbdh", K, C, variant="ste").scale, 2 / K)
