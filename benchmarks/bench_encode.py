"""Encoding throughput: batch-invariant ``encode`` against a plain BLAS product.

    python benchmarks/bench_encode.py            # full sizes
    python benchmarks/bench_encode.py --quick    # smoke run

Every ``transform`` ends in :func:`hashlearn._rowwise.rowwise_matmul` (float64, fixed summation
order, so a row's code does not depend on its batch). This prints what that costs: rows/s of
``model.encode`` against the BLAS expression the methods used before (``(X - mean) @ W`` and,
for the kernel methods, float32 distances + ``Φ @ Ψ``), on the same rows in the same run, and
checks that the two sets of codes agree except where a projection is within rounding of 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time, parser, save  # noqa: E402
from hashlearn.catalogue import make_method  # noqa: E402
from hashlearn.codes import pack  # noqa: E402


def blas_reference(model, X: np.ndarray) -> np.ndarray:
    """The projection by plain BLAS products (batch-dependent in its last bits)."""
    name = model.method_name
    if name == "itq" or name.startswith("h2q"):
        Z = X - model.mean_ if model.mean_ is not None else X
        if model.components_ is not None:
            Z = Z @ model.components_
        Z = Z * (np.sqrt(Z.shape[1]) / np.linalg.norm(Z, axis=1, keepdims=True))
        return Z @ model.rotation_
    if name in ("sign", "lsh"):
        return (X - model.mean_) @ model.components_
    # kernel methods: float32 squared distances, exp, centring, float32 product
    A = model.anchors_.astype(np.float32)
    X32 = X.astype(np.float32)
    d2 = (X32**2).sum(1)[:, None] - 2 * X32 @ A.T + (A**2).sum(1)[None, :]
    Phi = np.exp(np.maximum(d2, 0) * np.float32(-0.5 / model.sigma_**2))
    Phi -= model.kernel_mean_.astype(np.float32)
    return Phi @ model.projection_.astype(np.float32)


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n, d = (20_000, 256) if args.quick else (200_000, 512)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, d))
    labels = rng.integers(0, 10, n)
    X = centres[labels] + rng.standard_normal((n, d))
    train = slice(0, 5_000)
    rows = []
    print(f"{n:,} rows x {d} dims, 64 bits")
    print(f"{'method':>8} {'encode rows/s':>14} {'BLAS rows/s':>12} {'ratio':>6} {'agree':>7}")
    for name, params in (
        ("sign", {}),
        ("itq", {}),
        ("h2q", {}),
        ("ssah", {"n_anchors": 300 if args.quick else 1000}),
    ):
        model = make_method(name, n_bits=64, random_state=0, **params)
        model.fit(X[train], labels[train]) if name == "ssah" else model.fit(X[train])
        ours, codes = best_time(model.encode, X)
        ref, projections = best_time(blas_reference, model, X)
        agree = float((pack(projections) == codes).all(axis=1).mean())
        rows.append(
            {
                "method": name,
                "encode_s": ours,
                "blas_s": ref,
                "ratio": ref / ours,
                "codes_equal_fraction": agree,
            }
        )
        print(f"{name:>8} {n / ours:>14,.0f} {n / ref:>12,.0f} {ref / ours:>6.2f} {agree:>7.4f}")
    path = save("bench_encode", {"n": n, "d": d, "rows": rows}, args.output)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
