"""SSAH updates (S3)-(S10): each lowers its sub-problem; closed forms match a numeric minimiser."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import optimize

from hashlearn._labels import check_labels, similarity_products
from hashlearn._linalg import polar, random_orthogonal, sign
from hashlearn.shallow import _ssah_steps as steps


def make_problem(n=60, m=12, c=4, n_bits=5, p=1.0, seed=0, multilabel=False, scale=1.0, eps=0.0):
    rng = np.random.default_rng(seed)
    if multilabel:
        Y = (rng.random((n, c)) < 0.35).astype(float)
        Y[np.arange(n), rng.integers(0, c, n)] = 1.0
    else:
        Y = check_labels(np.arange(n) % c, n)
    Phi = rng.standard_normal((n, m)).astype(np.float32)
    Phi -= Phi.mean(axis=0)
    A, s_norm_sq = similarity_products(Y, 1.0, -1.0)
    prob = steps.Problem(
        Phi=Phi,
        phi_col_sq=(Phi.astype(np.float64) ** 2).sum(axis=0),
        Y=Y,
        A=A,
        C=Y.T @ Y,
        s_norm_sq=s_norm_sq,
        n_bits=n_bits,
        lambda1=2.0 * scale,
        lambda2=1.5 * scale,
        mu=0.7,
        p=p,
        eps_label=eps,
        eps_latent=eps,
    )
    U = polar(rng.standard_normal((m, n_bits)))
    V = rng.standard_normal((n, n_bits))
    st = steps.State(
        W=rng.standard_normal((c, n_bits)),
        U=U,
        V=V,
        R=random_orthogonal(n_bits, 1),
        B=sign(rng.standard_normal((n, n_bits))),
        PhiV=steps.phi_times(prob, V),
    )
    return prob, st


ALL_STEPS = {
    "W": steps.w_step,
    "U": steps.u_step,
    "V": steps.v_step,
    "R-cayley": steps.r_step_cayley,
    "R-mm": steps.r_step_mm,
    "B": steps.b_step,
}


@pytest.mark.parametrize("p", [2.0, 1.0, 0.5])
@pytest.mark.parametrize("name", list(ALL_STEPS))
@pytest.mark.parametrize(("multilabel", "eps"), [(False, 0.0), (True, 0.0), (False, 0.5)])
def test_each_update_lowers_the_objective(name, p, multilabel, eps):
    for seed in range(3):
        prob, st = make_problem(p=p, seed=seed, multilabel=multilabel, eps=eps)
        before = steps.objective(prob, st)
        ALL_STEPS[name](prob, st)
        after = steps.objective(prob, st)
        assert after <= before * (1 + 1e-9), (name, seed, before, after)
        assert after < before  # from a random state every step makes progress


def test_constraints_hold_after_updates():
    prob, st = make_problem(p=1.0)
    for step in ALL_STEPS.values():
        step(prob, st)
    eye = np.eye(prob.n_bits)
    assert np.allclose(st.U.T @ st.U, eye, atol=1e-10)
    assert np.allclose(st.R.T @ st.R, eye, atol=1e-10)
    assert set(np.unique(st.B)) <= {-1.0, 1.0}


def test_objective_matches_dense_formula():
    """(S1) computed without S equals the dense n × n evaluation (multi-label, p = 0.7)."""
    prob, st = make_problem(p=0.7, multilabel=True)
    Yc = prob.Y.T
    S = np.where(prob.Y @ prob.Y.T > 0, 1.0, -1.0)
    P, Z = st.W.T @ Yc, st.R @ st.V.T
    Q = prob.Phi.T.astype(np.float64) - st.U @ st.V.T
    l21 = lambda M: (np.linalg.norm(M, axis=1) ** prob.p).sum()  # noqa: E731
    dense = (
        ((prob.n_bits * S - P.T @ Z) ** 2).sum()
        + prob.lambda1 * l21(P - st.B.T)
        + prob.lambda2 * (l21(Q) + prob.mu * ((st.B.T - Z) ** 2).sum())
    )
    assert steps.objective(prob, st) == pytest.approx(dense, rel=1e-9)


def _surrogate(prob, st, d, k):
    """The reweighted objective (S2) with fixed D = diag(d), K = diag(k)."""
    lb = prob.n_bits
    S = np.where(prob.Y @ prob.Y.T > 0, 1.0, -1.0)
    Z = st.V @ st.R.T
    E = prob.Y @ st.W - st.B
    Q = prob.Phi.astype(np.float64) - st.V @ st.U.T
    return (
        ((lb * S - prob.Y @ st.W @ Z.T) ** 2).sum()
        + prob.lambda1 * ((E * E) * d).sum()
        + prob.lambda2 * (((Q * Q) * k).sum() + prob.mu * ((st.B - Z) ** 2).sum())
    )


def _weights(prob, st):
    return (
        steps.reweight(np.linalg.norm(prob.Y @ st.W - st.B, axis=0), prob.p),
        steps.reweight(steps._row_norms_Q(prob, st), prob.p),
    )


@pytest.mark.parametrize("p", [2.0, 0.8])
def test_w_and_v_closed_forms_match_numerical_minimiser(p):
    prob, st = make_problem(n=25, m=6, c=3, n_bits=3, p=p)
    d, k = _weights(prob, st)
    for name, shape in (("W", st.W.shape), ("V", st.V.shape)):

        def f(x, name=name, shape=shape):
            trial = st.copy()
            setattr(trial, name, x.reshape(shape))
            return _surrogate(prob, trial, d, k)

        res = optimize.minimize(
            f, getattr(st, name).ravel(), method="BFGS", options={"gtol": 1e-9, "maxiter": 5000}
        )
        closed = st.copy()
        if name == "W":
            steps.w_step(prob, closed, d=d)
        else:
            steps.v_step(prob, closed)
        assert f(getattr(closed, name).ravel()) <= res.fun * (1 + 1e-7)
        assert np.allclose(getattr(closed, name).ravel(), res.x, atol=1e-4 * np.abs(res.x).max())


def test_b_step_matches_brute_force():
    prob, st = make_problem(n=4, m=5, c=2, n_bits=2, p=1.0)
    d, k = _weights(prob, st)
    best = min(
        itertools.product((-1.0, 1.0), repeat=8),
        key=lambda b: _surrogate(
            prob, steps.State(st.W, st.U, st.V, st.R, np.reshape(b, (4, 2)), st.PhiV), d, k
        ),
    )
    steps.b_step(prob, st)
    assert np.array_equal(st.B, np.reshape(best, (4, 2)))


def _stiefel_minimum(f, shape, starts):
    """Best local minimum of f over orthonormal matrices via an unconstrained polar map."""
    best = np.inf
    for x0 in starts:
        res = optimize.minimize(lambda t: f(polar(t.reshape(shape))), x0.ravel(), method="BFGS")
        best = min(best, res.fun)
    return best


def test_u_step_p2_is_the_global_minimiser():
    prob, st = make_problem(n=20, m=5, c=2, n_bits=2, p=2.0)
    d, k = _weights(prob, st)

    def f(U):
        trial = st.copy()
        trial.U = U
        return _surrogate(prob, trial, d, k)

    rng = np.random.default_rng(3)
    numeric = _stiefel_minimum(f, st.U.shape, [rng.standard_normal(st.U.shape) for _ in range(4)])
    steps.u_step(prob, st)
    assert f(st.U) <= numeric + 1e-7 * abs(numeric)


def test_cayley_r_step_reaches_a_stationary_minimum():
    prob, st = make_problem(n=30, m=6, c=3, n_bits=3, p=1.0)
    Gp, Gv, M = steps._r_problem(prob, st)
    f = lambda R: steps._r_value(R, Gp, Gv, M)  # noqa: E731
    start = f(st.R)
    steps.r_step_cayley(prob, st, n_iter=500)
    G = 2.0 * (Gp @ st.R @ Gv - M)
    omega = G @ st.R.T - st.R @ G.T
    assert f(st.R) < start
    assert np.linalg.norm(omega) <= 1e-5 * np.linalg.norm(G)
    rng = np.random.default_rng(4)
    numeric = _stiefel_minimum(f, (3, 3), [st.R + 0.01 * rng.standard_normal((3, 3))])
    assert f(st.R) <= numeric + 1e-6 * abs(numeric)


def test_svd_r_step_solves_its_procrustes_problem():
    """(S8) maximises tr(Rᵀ M): no rotation (sampled or locally optimised) does better."""
    prob, st = make_problem(p=2.0)
    M = steps._r_problem(prob, st)[2]
    steps.r_step_svd(prob, st)
    value = float((st.R * M).sum())
    rng = np.random.default_rng(5)
    for seed in range(50):
        assert float((random_orthogonal(prob.n_bits, seed) * M).sum()) <= value + 1e-9
    numeric = -_stiefel_minimum(
        lambda R: -float((R * M).sum()), M.shape, [rng.standard_normal(M.shape)]
    )
    assert value >= numeric - 1e-7 * abs(numeric)


@pytest.mark.parametrize("multilabel", [False, True])
def test_similarity_products_match_dense(multilabel):
    rng = np.random.default_rng(6)
    if multilabel:
        Y = (rng.random((80, 5)) < 0.3).astype(float)
        Y[np.arange(80), rng.integers(0, 5, 80)] = 1
    else:
        Y = check_labels(rng.integers(0, 5, 80), 80)
    for s_pos, s_neg in ((1.0, -1.0), (1.0, 0.0)):
        S = np.where(Y @ Y.T > 0, s_pos, s_neg)
        A, norm_sq = similarity_products(Y, s_pos, s_neg)
        assert np.allclose(A, S @ Y)
        assert norm_sq == pytest.approx((S * S).sum())


def test_sign_inplace_matches_allocating_sign():
    M = np.random.default_rng(0).standard_normal((50, 7))
    M[0, :3] = [0.0, -0.0, -1e-300]
    expected = sign(M)
    assert np.array_equal(expected[0, :3], [1.0, 1.0, -1.0])
    out = sign(M, inplace=True)
    assert out is M and np.array_equal(out, expected)
    assert not np.signbit(out[0, 1])  # −0 became +1, not −1


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_smoothed_weights_majorise_the_smoothed_norm(p):
    """(S2) with ε: w(t) = (t + ε²)^{p/2} is concave in t = ‖row‖², so its tangent at t₀,
    whose slope is the weight d = p/2 (t₀ + ε²)^{p/2−1}, lies above it everywhere."""
    eps, t0 = 0.3, np.array([0.0, 1e-6, 0.05, 2.0, 40.0])
    d = steps.reweight(np.sqrt(t0), p, eps)
    assert np.allclose(d, 0.5 * p * (t0 + eps**2) ** (0.5 * p - 1.0))
    f = lambda t: (t + eps**2) ** (0.5 * p)  # noqa: E731
    for t in np.linspace(0.0, 50.0, 101):
        assert np.all(f(t0) + d * (t - t0) >= f(t) - 1e-12)
    assert steps.l2p(np.sqrt(t0), p, eps) == pytest.approx(f(t0).sum())
    assert steps.l2p(np.sqrt(t0), p, 0.0) == pytest.approx((np.sqrt(t0) ** p).sum())
