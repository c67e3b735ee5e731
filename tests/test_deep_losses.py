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

N_BITS, N_CLASSES, BATCH = 8, 4, 6


def _batch(n=BATCH, k=N_BITS, seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randn(n, k, generator=g, dtype=torch.float64).tanh()
    ids = torch.tensor([0, 1, 2, 3, 1, 0, 2, 1][:n])
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


def _class_balanced(values_by_pair, sims):
    groups = {}
    for v, s in zip(values_by_pair, sims):
        groups.setdefault(s, []).append(v)
    return sum(sum(g) / len(g) for g in groups.values())


def ref_hashnet(loss, u, y):
    alpha = 10.0 / len(u[0])
    vals, sims = [], []
    for i, j in _pairs(len(u)):
        theta, s = alpha * _dot(u[i], u[j]), _sim(y[i], y[j])
        vals.append(math.log1p(math.exp(theta)) - s * theta)
        sims.append(s)
    return _class_balanced(vals, sims)


def _cos(a, b):
    return _dot(a, b) / math.sqrt(_dot(a, a) * _dot(b, b))


def ref_dch(loss, u, y):
    k, gamma = len(u[0]), loss.gamma
    vals, sims = [], []
    for i, j in _pairs(len(u)):
        d, s = k / 2 * (1 - min(_cos(u[i], u[j]), 0.99)), _sim(y[i], y[j])
        vals.append(s * math.log(d / gamma) + math.log(1 + gamma / d))
        sims.append(s)
    return _class_balanced(vals, sims)


def ref_csq(loss, u, y):
    table, ties = loss.center_table.tolist(), loss.tie_signs.tolist()
    total = 0.0
    for ui, yi in zip(u, y):
        for b in range(len(ui)):
            m = sum(yi[c] * table[c][b] for c in range(len(yi)))
            c = ties[b] if m == 0 else math.copysign(1.0, m)
            h, t = (ui[b] + 1) / 2, (c + 1) / 2
            total -= t * math.log(h) + (1 - t) * math.log(1 - h)
    return total / (len(u) * len(u[0]))


def ref_greedyhash(loss, u, y):
    w, bias = loss.classifier.weight.tolist(), loss.classifier.bias.tolist()
    total = 0.0
    for ui, yi in zip(u, y):
        h = [1.0 if x > 0 else -1.0 for x in ui]
        logits = [_dot(wc, h) + bc for wc, bc in zip(w, bias)]
        log_z = math.log(sum(math.exp(z) for z in logits))
        total -= sum(t / sum(yi) * (z - log_z) for t, z in zip(yi, logits))
    return total / len(u)


def ref_dbdh(loss, u, y):
    b, scale = [[min(max(x, -1.0), 1.0) for x in row] for row in u], 0.5
    total = 0.0
    for i, j in _pairs(len(b)):
        theta = scale * _dot(b[i], b[j])
        total += math.log1p(math.exp(theta)) - _sim(y[i], y[j]) * theta
    return total / len(_pairs(len(b)))


def ref_wglhh(loss, u, y):
    k = len(u[0])
    vals, sims = [], []
    for i, j in _pairs(len(u)):
        c, s = _cos(u[i], u[j]), _sim(y[i], y[j])
        x = loss.alpha * (k * (1 - c) / 2) ** 2
        e = math.exp(-x)
        log_sig = -math.log1p(math.exp(-x))
        a = math.exp(abs((c + 1) / 2 - s))
        vals.append(a * ((1 - s) * e + s * ((1 + e) * log_sig - x * e)))
        sims.append(s)
    return _class_balanced(vals, sims)


def ref_dsh(loss, u, y):
    total = 0.0
    for i, j in _pairs(len(u)):
        d2 = sum((a - b) ** 2 for a, b in zip(u[i], u[j]))
        s = _sim(y[i], y[j])
        total += 0.5 * s * d2 + 0.5 * (1 - s) * max(0.0, loss.margin - d2)
    return total / len(_pairs(len(u)))


def ref_cel(loss, u, y):
    """torch.nn.CosineEmbeddingLoss itself, on the ordered pairs i != j."""
    pairs = _pairs(len(u))
    a = torch.tensor([u[i] for i, _ in pairs], dtype=torch.float64)
    b = torch.tensor([u[j] for _, j in pairs], dtype=torch.float64)
    signs = [1.0 if _sim(y[i], y[j]) else -1.0 for i, j in pairs]
    target = torch.tensor(signs, dtype=torch.float64)
    return torch.nn.CosineEmbeddingLoss(margin=loss.margin)(a, b, target).item()


def _mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def ref_hyp2(loss, u, y):
    proxies, zeta = loss.proxies.tanh().tolist(), loss.threshold
    pos, neg = [], []
    for ui, yi in zip(u, y):
        for c, pc in enumerate(proxies):
            cos = _cos(ui, pc)
            (pos if yi[c] > 0 else neg).append(1 - cos if yi[c] > 0 else max(0.0, cos - zeta))
    pair = [max(0.0, _cos(u[i], u[j]) - zeta) for i, j in _pairs(len(u)) if _sim(y[i], y[j]) == 0]
    return _mean(pos) + _mean(neg) + loss.beta * _mean(pair)


def ref_orthohash(loss, u, y):
    targets = loss.targets.tolist()
    total = 0.0
    for ui, yi in zip(u, y):
        logits = [loss.scale * (_cos(ui, t) - loss.margin * (yc > 0)) for t, yc in zip(targets, yi)]
        log_z = math.log(sum(math.exp(z) for z in logits))
        total -= sum(yc / sum(yi) * (z - log_z) for yc, z in zip(yi, logits))
    return total / len(u)


REFERENCES = {
    "dhn": ref_dpsh,  # DHN's likelihood is DPSH's on tanh codes; the penalties differ
    "dbdh": ref_dbdh,
    "wglhh": ref_wglhh,
    "hyp2": ref_hyp2,
    "cel": ref_cel,
    "orthohash": ref_orthohash,
    "dsh": ref_dsh,
    "dpsh": ref_dpsh,
    "hashnet": ref_hashnet,
    "dch": ref_dch,
    "csq": ref_csq,
    "greedyhash": ref_greedyhash,
    "dsdh": ref_dpsh,  # the network-side similarity term of DSDH is DPSH's likelihood
}


def _entries(u):
    return [x for row in u for x in row]


def _sgn(x):
    return 1.0 if x > 0 else -1.0


def ref_dch_penalty(loss, u):
    k = len(u[0])
    vals = []
    for row in u:
        d = k / 2 * (1 - min(_cos([abs(x) for x in row], [1.0] * k), 0.99))
        vals.append(math.log(1 + d / loss.gamma))
    return sum(vals) / len(vals)


PENALTIES = {
    "dhn": lambda loss, u: _mean([math.log(math.cosh(abs(x) - 1)) for x in _entries(u)]),
    "dbdh": lambda loss, u: _mean([_mean([min(max(x, -1.0), 1.0) for x in row]) ** 2 for row in u]),
    "wglhh": lambda loss, u: _mean([(x - _sgn(x)) ** 2 for x in _entries(u)]),
    "hyp2": lambda loss, u: 0.0,
    "cel": lambda loss, u: _mean([(x - _sgn(x)) ** 2 for x in _entries(u)]),
    "orthohash": lambda loss, u: 0.0,
    "dsh": lambda loss, u: _mean([sum(abs(abs(x) - 1) for x in row) for row in u]),
    "dpsh": lambda loss, u: sum((x - _sgn(x)) ** 2 for x in _entries(u)) / len(_entries(u)),
    "dsdh": lambda loss, u: sum((x - _sgn(x)) ** 2 for x in _entries(u)) / len(_entries(u)),
    "hashnet": lambda loss, u: 0.0,
    "dch": ref_dch_penalty,
    "csq": lambda loss, u: sum((abs(x) - 1) ** 2 for x in _entries(u)) / len(_entries(u)),
    "greedyhash": lambda loss, u: sum(abs(abs(x) - 1) ** 3 for x in _entries(u)) / len(_entries(u)),
}
# Losses whose value depends only on the pair similarity matrix, so multi-label data with the
# same similarity structure as single-label data gives the same loss.
PAIRWISE_ONLY = {"dpsh", "hashnet", "dch", "dsdh", "dhn", "dbdh", "wglhh", "cel", "dsh"}
# Losses that binarize inside with a straight-through estimator: finite differences see a
# step function, so their gradient is checked with respect to their own parameters.
STRAIGHT_THROUGH = {"greedyhash"}
# WGLHH's pair attention is a constant in the gradient (as in the paper), so the exact
# gradient check runs without it; its value with attention is checked against the formula.
GRADCHECK_KWARGS = {"wglhh": {"attention": False}}


# ADSH needs the training labels and batch indices (its database codes are per training item);
# it has its own tests (test_deep_losses_adsh.py).
GENERIC = [name for name in available_losses() if name != "adsh"]


def test_every_registered_loss_has_a_reference():
    assert set(GENERIC) == set(REFERENCES) == set(PENALTIES)


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_quantization_penalty_matches_direct_formula(name):
    loss = _loss(name)
    codes, _ = _batch()
    expected = PENALTIES[name](loss, codes.tolist())
    assert loss.quantization_penalty(codes).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _loss(name, **kw):
    return get_loss(name, N_BITS, N_CLASSES, **kw).double()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_value_matches_direct_formula(name):
    loss = _loss(name)
    codes, ids = _batch()
    y = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    y[0, 2] = 1.0  # two multi-label items that share no label
    y[1, 3] = 1.0
    expected = REFERENCES[name](loss, codes.tolist(), y.tolist())
    assert loss(codes, y).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", GENERIC)
def test_gradcheck_float64(name):
    loss = _loss(name, **GRADCHECK_KWARGS.get(name, {}))
    codes, ids = _batch(4)
    y = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    codes.requires_grad_(True)
    if name in STRAIGHT_THROUGH:
        # Finite differences of a step function are zero; the STE itself is tested in
        # test_deep_losses_specific.py.  Parameters of the loss are still checked.
        names = [n for n, _ in loss.named_parameters()]

        def of_params(*values):
            return torch.func.functional_call(loss, dict(zip(names, values)), (codes, y))

        inputs = tuple(p.detach().clone().requires_grad_(True) for p in loss.parameters())
        if inputs:
            assert torch.autograd.gradcheck(of_params, inputs, eps=1e-6, atol=1e-5)
    else:
        assert torch.autograd.gradcheck(lambda u: loss(u, y), (codes,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(
        lambda u: loss.quantization_penalty(u), (codes,), eps=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("name", GENERIC)
def test_integer_ids_equal_one_hot(name):
    loss = _loss(name)
    codes, ids = _batch()
    one_hot = torch.nn.functional.one_hot(ids, N_CLASSES).double()
    assert loss(codes, ids).item() == pytest.approx(loss(codes, one_hot).item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(PAIRWISE_ONLY))
def test_multi_label_with_single_label_structure_agrees(name):
    """Class c of the single-label batch becomes the label set {2c, 2c+1} of a 6-class one."""
    codes, ids = _batch()
    kw = {"margin": 0.1} if name == "cel" else {}  # CEL's table margin depends on C
    single = get_loss(name, N_BITS, N_CLASSES, **kw).double()
    multi = get_loss(name, N_BITS, 2 * N_CLASSES, **kw).double()
    y_multi = _multi_hot([(2 * c, 2 * c + 1) for c in ids.tolist()], 2 * N_CLASSES)
    assert multi(codes, y_multi).item() == pytest.approx(single(codes, ids).item(), rel=1e-12)


@pytest.mark.parametrize("name", GENERIC)
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


@pytest.mark.parametrize("name", GENERIC)
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


@pytest.mark.parametrize("name", GENERIC)
def test_rotation_invariant_flag_is_true_exactly_for_invariant_losses(name):
    """``rotation_invariant`` (H²Q's premise) must describe the loss: rotating every code (and
    the loss's learned code-space parameters, e.g. HyP² proxies) by one orthogonal matrix
    leaves the loss unchanged iff the flag is True."""
    k, c = 16, 4
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(k, k, generator=gen, dtype=torch.float64))
    u = 0.5 * torch.randn(12, k, generator=gen, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.arange(12) % c, c).double()
    loss = get_loss(name, k, c, n_train=12).double()
    before = loss(u, y, torch.arange(12)).item()
    with torch.no_grad():
        for p in loss.parameters():
            if p.shape[-1] == k and name == "hyp2":  # proxies enter through tanh
                rotated = p.tanh() @ q
                p.copy_(torch.atanh(0.9 * rotated / rotated.abs().max()))
            elif p.shape[-1] == k:
                p.copy_(p @ q)
    after = loss(u @ q, y, torch.arange(12)).item()
    assert (abs(before - after) < 1e-9) == loss.rotation_invariant
