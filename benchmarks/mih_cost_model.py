"""Cost model of MIH vs the flat scan as n grows to 1 B, against bench_search's measured points.

Flat: ``t = a · n`` per query. MIH (Norouzi, Punjani & Fleet, TPAMI 2014, Sec. 5): with
``m = round(b / log2 n)`` substrings of ``s = b / m`` bits and k-th neighbour distance ``d``,
a query probes every key within substring radius ``r = floor(d / m)`` of each table,
``L = m · sum_{j <= r} C(s, j)`` lookups, and checks the codes found there, about
``L · n / 2^s`` for codes spread over the key space (clustered codes put more in the probed
buckets; the fitted constant absorbs that). So ``t = c · L · (1 + n / 2^s)``. ``a`` and ``c``
are least-squares fits (in log space) to the measured points; ``d`` is the measured median
k-th distance, held at its largest-n value beyond the measurements (more codes only bring
neighbours closer, so the extrapolation is conservative).

Usage: python benchmarks/mih_cost_model.py [results/bench_search.json]
Writes results/mih_cost_model.png and prints the model's q/s at 100 M and 1 B.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
N_BITS = 64


def lookups(n: float, d: float) -> tuple[float, float]:
    m = max(1, round(N_BITS / math.log2(n)))
    s = N_BITS / m
    r = int(d // m)
    probes = m * sum(math.comb(round(s), j) for j in range(r + 1))
    return probes, probes * (1 + n / 2**s)


def fit(path: Path) -> dict:
    rows = json.loads(path.read_text())["scaling"]
    n = np.array([r["n"] for r in rows], dtype=float)
    t_flat = 1 / np.array([r["flat_qps"] for r in rows])
    t_mih = 1 / np.array([r["mih_qps"] for r in rows])
    d = np.array([r["median_kth_distance"] for r in rows])
    work = np.array([lookups(ni, di)[1] for ni, di in zip(n, d)])
    a = float(np.exp(np.mean(np.log(t_flat / n))))
    c = float(np.exp(np.mean(np.log(t_mih / work))))
    return {
        "n": n,
        "t_flat": t_flat,
        "t_mih": t_mih,
        "a": a,
        "c": c,
        "d_last": float(d[-1]),
        "d": d,
    }


def model(f: dict, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.interp(np.log(grid), np.log(f["n"]), f["d"], right=f["d_last"])
    mih = np.array([f["c"] * lookups(n, di)[1] for n, di in zip(grid, d)])
    return f["a"] * grid, mih


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "bench_search.json"
    f = fit(path)
    grid = np.logspace(4, 9, 60)
    flat, mih = model(f, grid)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.loglog(grid, 1 / flat, "-", color="C0", label="flat scan, model a·n")
    ax.loglog(grid, 1 / mih, "-", color="C1", label="MIH, model c·L·(1+n/2^s)")
    ax.loglog(f["n"], 1 / f["t_flat"], "o", color="C0", label="flat, measured")
    ax.loglog(f["n"], 1 / f["t_mih"], "s", color="C1", label="MIH, measured")
    ax.set_xlabel("codes in the index (n), 64-bit clustered LSH codes")
    ax.set_ylabel("queries per second, k = 10")
    ax.set_title("Exact Hamming k-NN: MIH vs flat scan")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = RESULTS / "mih_cost_model.png"
    fig.savefig(out, dpi=120)
    for n in (1e8, 1e9):
        fl, mi = model(f, np.array([n]))
        print(
            f"n={n:.0e}: flat {1 / fl[0]:,.1f} q/s, MIH {1 / mi[0]:,.0f} q/s, "
            f"ratio {fl[0] / mi[0]:,.0f}x"
        )
    print(f"a = {f['a']:.3g} s/code, c = {f['c']:.3g} s/unit, d = {f['d_last']:.0f}; wrote {out}")


if __name__ == "__main__":
    main()
