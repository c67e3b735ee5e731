"""The SSAH objective and its alternating updates, as pure functions on a problem and a state.

Scalable Supervised Asymmetric Hashing (Zhang, Lai, Huang, Wong, Xie, Liu, Shao; IEEE TIP
2019), as specified by the book chapter that describes it (the authors published no code).
The chapter numbers no equations and its typeset updates are missing, so the equations are
labelled (S1)–(S11) here; each is derived from the chapter's final objective (§2.2.2) and its
reweighting (§2.2.3). In the chapter's column convention (X is d × n; here d = m anchors):

(S1)  L = ‖lS − (WᵀY)ᵀ R V‖²_F + λ₁ ‖WᵀY − B‖^p_{2,p} + λ₂ (‖φ(X) − UV‖^p_{2,p} + μ ‖B − RV‖²_F),
      s.t. B ∈ {−1, 1}^{l×n}, UᵀU = I, RᵀR = I,  with ‖M‖^p_{2,p} = Σ_i ‖mⁱ‖^p over rows mⁱ.
(S2)  ‖E‖^p_{2,p} → tr(Eᵀ D E), D = diag(dᵢᵢ), dᵢᵢ = p / (2 ‖eⁱ‖^{2−p}) for E = WᵀY − B
      (l × l), and likewise K (m × m) for Q = φ(X) − UV (§2.2.3). The chapter prints
      "p / (2‖eⁱ‖^p)" (garbled); the weight used is the one that makes tr(EᵀDE) a majoriser of
      ‖E‖^p_{2,p} touching it at the current E, so a step that lowers the reweighted problem
      lowers (S1). For p = 2, D = K = I and (S2) is (S1). For p < 2 the estimator smooths
      each row norm, ‖eⁱ‖ → (‖eⁱ‖² + ε²)^{1/2} with a small fixed ε (then dᵢᵢ =
      p / (2 (‖eⁱ‖² + ε²)^{1−p/2})), as is usual for IRLS: for p < 1 the ℓ2,p term drives
      rows of Q to zero, where the unsmoothed weights blow up (1e12 ratios were seen), the
      V-step system becomes singular and (S1) jumped up.
(S3)  W-step: C W (Z Zᵀ + λ₁ D) = l Aᵀ Zᵀ + λ₁ Y Bᵀ D, Z = RV, C = Y Yᵀ, A = S Yᵀ (exact).
(S4)  U-step: U = polar(K φ(X) Vᵀ + (k_max I − K) U₀ V Vᵀ). For p = 2 this is the chapter's
      Procrustes closed form U = polar(φ(X) Vᵀ) (exact); for p < 2, tr(Uᵀ K U V Vᵀ) is not
      constant on UᵀU = I and the shift K = k_max I − N with a linearised −tr(UᵀNUVVᵀ) gives a
      majorise-minimise step (monotone).
(S5)  V-step: (RᵀWᵀCWR + λ₂ UᵀKU + λ₂μ I) V = l RᵀWᵀAᵀ + λ₂ UᵀKφ(X) + λ₂μ RᵀB (exact).
(S6)  R-step problem: f(R) = tr(Rᵀ (WᵀCW) R (VVᵀ)) − 2 tr(Rᵀ M),  M = l WᵀAᵀVᵀ + λ₂μ BVᵀ.
(S7)  SSAH-Q: Cayley curve R(τ) = (I + τ/2 Ω)⁻¹ (I − τ/2 Ω) R, Ω = G Rᵀ − R Gᵀ, G = ∇f(R),
      with Armijo back-tracking (Wen & Yin 2013): feasible and monotone.
(S8)  SVD step (the chapter's "maximum inner product" variant): drop the quadratic term of
      (S6), R = polar(M), an orthogonal Procrustes problem. It minimises a different problem,
      so (S1) may go up: NOT monotone.
(S9)  MM step: R = polar(M + (g I − WᵀCW) R₀ VVᵀ), g = λ_max(WᵀCW): an SVD step that
      majorises (S6), monotone.
(S10) B-step: B = sgn(λ₁ D WᵀY + λ₂μ RV) (exact; the similarity term does not involve B).
(S11) Out-of-sample (§2.2.4): Ψ = argmin ‖B − Ψᵀφ(X)‖² + λ‖Ψ‖², code(x) = sgn(Ψᵀ φ(x)).

Storage is sample-major: ``Phi`` = φ(X)ᵀ (n × m, float32), ``Y`` = Yᵀ and ``A`` (n × c),
``V`` = Vᵀ and ``B`` = Bᵀ (n × l); W (c × l), U (m × l), R (l × l) as in the chapter. Every
step costs O(n (m + c) l) time and O(n l) extra memory; S is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from hashlearn._linalg import polar, sign

_EPS = 1e-12


@dataclass
class Problem:
    """Fixed data of one SSAH fit (see the module docstring for shapes)."""

    Phi: np.ndarray  # φ(X)ᵀ, n × m float32
    phi_col_sq: np.ndarray  # ‖row q of φ(X)‖², (m,)
    Y: np.ndarray  # Yᵀ, n × c
    A: np.ndarray  # S Yᵀ, n × c
    C: np.ndarray  # Y Yᵀ, c × c
    s_norm_sq: float  # ‖S‖²_F
    n_bits: int
    lambda1: float
    lambda2: float
    mu: float
    p: float
    eps_label: float = 0.0  # ε of the smoothed ℓ2,p norm of E = WᵀY − B (S2)
    eps_latent: float = 0.0  # ε of the smoothed ℓ2,p norm of Q = φ(X) − UV (S2)


@dataclass
class State:
    """Variables of (S1), plus the cached product φ(X) Vᵀ (m × l) of the current V."""

    W: np.ndarray
    U: np.ndarray
    V: np.ndarray
    R: np.ndarray
    B: np.ndarray
    PhiV: np.ndarray

    def copy(self) -> State:
        return State(*(x.copy() for x in (self.W, self.U, self.V, self.R, self.B, self.PhiV)))


def phi_times(prob: Problem, V: np.ndarray) -> np.ndarray:
    """φ(X) Vᵀ (m × l) for sample-major V (n × l), float32 BLAS accumulated to float64."""
    return (prob.Phi.T @ V.astype(np.float32)).astype(np.float64)


def _row_norms_E(prob: Problem, st: State) -> np.ndarray:
    # Rows of E = WᵀY − B: ‖eʲ‖² = (WᵀCW)_jj − 2 (Wᵀ Y Bᵀ)_jj + n (B is ±1), so only the
    # c × l product Y Bᵀ touches n and no n × l temporary is allocated.
    YB = prob.Y.T @ st.B
    sq = np.einsum("kj,kj->j", st.W, prob.C @ st.W) - 2.0 * np.einsum("kj,kj->j", st.W, YB)
    return np.sqrt(np.maximum(sq + len(st.B), 0.0))


def _row_norms_Q(prob: Problem, st: State) -> np.ndarray:
    # ‖qʲ‖² = ‖φʲ‖² − 2 uʲ·(φ(X)Vᵀ)ʲ + uʲ (VVᵀ) uʲᵀ, without forming Q = φ(X) − UV.
    G = st.V.T @ st.V
    sq = prob.phi_col_sq - 2.0 * (st.U * st.PhiV).sum(axis=1) + ((st.U @ G) * st.U).sum(axis=1)
    return np.sqrt(np.maximum(sq, 0.0))


def reweight(norms: np.ndarray, p: float, eps: float = 0.0) -> np.ndarray:
    """Diagonal of D or K in (S2): p / (2 (‖row‖² + ε²)^{1−p/2}); exactly 1 for p = 2.

    With ε > 0 this is the exact majoriser of the smoothed norm Σ (‖row‖² + ε²)^{p/2}, so
    reweighted steps are monotone. With ε = 0, row norms are floored at 1e-8 of the largest
    one (and 1e-12), the usual guard of iterative reweighting against rows that the ℓ2,p norm
    (p < 1) drives to zero.
    """
    if p == 2:
        return np.ones_like(norms)
    if eps > 0:
        return 0.5 * p * (norms * norms + eps * eps) ** (0.5 * p - 1.0)
    floor = max(_EPS, 1e-8 * float(norms.max(initial=0.0)))
    return 0.5 * p * np.maximum(norms, floor) ** (p - 2.0)


def l2p(norms: np.ndarray, p: float, eps: float = 0.0) -> float:
    """Σ ‖row‖^p, or its smoothed form Σ (‖row‖² + ε²)^{p/2} for p < 2 and ε > 0 (S2)."""
    if p == 2 or eps == 0:
        return float((norms**p).sum())
    return float(((norms * norms + eps * eps) ** (0.5 * p)).sum())


def solve_psd(M: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """X with X M = rhs for a symmetric positive semi-definite l × l M (least squares if
    M is numerically singular)."""
    try:
        return linalg.cho_solve(linalg.cho_factor(M), rhs.T).T
    except linalg.LinAlgError:
        return linalg.lstsq(M, rhs.T, cond=1e-12)[0].T


def objective_terms(prob: Problem, st: State) -> dict[str, float]:
    """The four terms of (S1), each computed in O(n (c + l) l) with S never formed."""
    lb = prob.n_bits
    Z = st.V @ st.R.T  # (RV)ᵀ
    # ‖B − Z‖² = n l − 2 ⟨B, Z⟩ + ‖Z‖² (B is ±1), without an n × l temporary.
    quantization = st.B.size - 2.0 * float(np.einsum("ij,ij->", st.B, Z))
    quantization += float(np.einsum("ij,ij->", Z, Z))
    similarity = (
        lb * lb * prob.s_norm_sq
        - 2.0 * lb * float((st.W * (prob.A.T @ Z)).sum())
        + float(((st.W.T @ prob.C @ st.W) * (Z.T @ Z)).sum())
    )
    return {
        "similarity": max(similarity, 0.0),
        "label": prob.lambda1 * l2p(_row_norms_E(prob, st), prob.p, prob.eps_label),
        "latent": prob.lambda2 * l2p(_row_norms_Q(prob, st), prob.p, prob.eps_latent),
        "quantization": prob.lambda2 * prob.mu * max(quantization, 0.0),
    }


def objective(prob: Problem, st: State) -> float:
    """Value of (S1)."""
    return float(sum(objective_terms(prob, st).values()))


def w_step(prob: Problem, st: State, d: np.ndarray | None = None) -> None:
    """(S3): exact minimiser over W of the reweighted problem, D from the current E."""
    if d is None:
        d = reweight(_row_norms_E(prob, st), prob.p, prob.eps_label)
    Z = st.V @ st.R.T
    rhs = prob.n_bits * (prob.A.T @ Z) + prob.lambda1 * (prob.Y.T @ st.B) * d[None, :]
    right = Z.T @ Z + prob.lambda1 * np.diag(d)
    # C W M = rhs  ⇔  W = C⁺ rhs M⁻¹ (C is invertible when every class occurs alone; the
    # pseudo-inverse gives a minimiser when multi-label classes always co-occur).
    left = linalg.lstsq(prob.C, rhs, cond=1e-12)[0]
    st.W = solve_psd(right, left)


def u_step(prob: Problem, st: State) -> None:
    """(S4): Procrustes (p = 2) or majorise-minimise Procrustes (p < 2) step on UᵀU = I."""
    k = reweight(_row_norms_Q(prob, st), prob.p, prob.eps_latent)
    M = k[:, None] * st.PhiV
    if prob.p != 2:
        M += (k.max() - k)[:, None] * (st.U @ (st.V.T @ st.V))
    st.U = polar(M)


def v_step(prob: Problem, st: State) -> None:
    """(S5): exact minimiser over V of the reweighted problem, K from the current Q."""
    k = reweight(_row_norms_Q(prob, st), prob.p, prob.eps_latent)
    lam2, lam2mu = prob.lambda2, prob.lambda2 * prob.mu
    WR = st.W @ st.R
    H = WR.T @ prob.C @ WR + lam2 * (st.U.T * k[None, :]) @ st.U + lam2mu * np.eye(prob.n_bits)
    KU = (lam2 * k[:, None] * st.U).astype(np.float32)
    rhs = (prob.Phi @ KU).astype(np.float64)  # accumulate in place: few n × l temporaries
    rhs += prob.A @ (prob.n_bits * WR)
    rhs += st.B @ (lam2mu * st.R)
    st.V = solve_psd(H, rhs)
    st.PhiV = phi_times(prob, st.V)


def _r_problem(prob: Problem, st: State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S6) data: Gp = WᵀCW, Gv = VVᵀ and M."""
    Gp = st.W.T @ prob.C @ st.W
    Gv = st.V.T @ st.V
    M = prob.n_bits * st.W.T @ (prob.A.T @ st.V) + prob.lambda2 * prob.mu * (st.B.T @ st.V)
    return Gp, Gv, M


def _r_value(R: np.ndarray, Gp: np.ndarray, Gv: np.ndarray, M: np.ndarray) -> float:
    return float(((R.T @ Gp @ R) * Gv).sum() - 2.0 * (R * M).sum())


def r_step_svd(prob: Problem, st: State) -> None:
    """(S8): the chapter's orthogonal Procrustes step R = polar(M) (not monotone for (S1))."""
    st.R = polar(_r_problem(prob, st)[2])


def r_step_mm(prob: Problem, st: State) -> None:
    """(S9): majorise-minimise Procrustes step (monotone)."""
    Gp, Gv, M = _r_problem(prob, st)
    g = float(np.linalg.eigvalsh(Gp)[-1])
    st.R = polar(M + (g * np.eye(len(Gp)) - Gp) @ st.R @ Gv)


def r_step_cayley(
    prob: Problem, st: State, n_iter: int = 20, rho: float = 1e-4, gtol: float = 1e-8
) -> None:
    """(S7): SSAH-Q, feasible Cayley-transform descent with Armijo back-tracking (monotone).

    Each accepted step satisfies f(R(τ)) ≤ f(R) − ρ τ ‖Ω‖²/2, so f never increases; the first
    trial step of each iteration is the Barzilai–Borwein length of the previous one.
    """
    Gp, Gv, M = _r_problem(prob, st)
    eye = np.eye(len(Gp))
    R = st.R
    f = _r_value(R, Gp, Gv, M)
    tau, prev = None, None
    for _ in range(n_iter):
        G = 2.0 * (Gp @ R @ Gv - M)
        Omega = G @ R.T - R @ G.T
        slope = 0.5 * float((Omega * Omega).sum())  # −f'(0) along the Cayley curve
        if slope <= gtol * max(abs(f), 1.0):
            break
        if tau is None:
            tau = 1.0 / np.sqrt(2.0 * slope)
        elif prev is not None:
            s_vec, y_vec = (R - prev[0]).ravel(), (G - prev[1]).ravel()
            sy = abs(float(s_vec @ y_vec))
            tau = float(s_vec @ s_vec) / sy if sy > 0 else tau
        for _ in range(40):
            half = 0.5 * tau * Omega
            R_new = linalg.solve(eye + half, (eye - half) @ R)
            f_new = _r_value(R_new, Gp, Gv, M)
            if f_new <= f - rho * tau * slope:
                break
            tau *= 0.5
        else:
            break
        prev = (R, G)
        R, f = R_new, f_new
    st.R = R


def b_step(prob: Problem, st: State) -> None:
    """(S10): exact minimiser over B ∈ {−1, 1}, D from the current E."""
    d = reweight(_row_norms_E(prob, st), prob.p, prob.eps_label)
    T = st.V @ (prob.lambda2 * prob.mu * st.R.T)
    T += prob.Y @ (prob.lambda1 * st.W * d[None, :])
    st.B = sign(T, inplace=True)


R_STEPS = {"cayley": r_step_cayley, "svd": r_step_svd, "mm": r_step_mm}
