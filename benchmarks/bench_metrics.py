"""mAP of 1,000 queries over a 60,000-item database: hashlearn vs a NumPy reference.

The reference is the usual research-script implementation (full distance matrix per query
block, argsort, cumulative sums). Each runs in its own process so that its peak resident
memory (ru_maxrss) is measured separately.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import parser, save  # noqa: E402
from hashlearn.report import format_table  # noqa: E402


def make_data(n_q: int, n_db: int, n_bits: int = 64, n_classes: int = 10):
    rng = np.random.default_rng(0)
    labels_db = rng.integers(0, n_classes, n_db)
    labels_q = rng.integers(0, n_classes, n_q)
    centres = rng.choice([-1.0, 1.0], size=(n_classes, n_bits))
    db = np.sign(centres[labels_db] + 1.5 * rng.standard_normal((n_db, n_bits)))
    q = np.sign(centres[labels_q] + 1.5 * rng.standard_normal((n_q, n_bits)))
    return q, db, labels_q, labels_db


def reference_map(q, db, labels_q, labels_db, block=100):
    """Research-script mAP@all: B·Bᵀ distances, stable argsort, cumulative precision."""
    n_bits = q.shape[1]
    aps = []
    for start in range(0, len(q), block):
        dist = 0.5 * (n_bits - q[start : start + block] @ db.T)
        order = np.argsort(dist, axis=1, kind="stable")
        relevant = labels_q[start : start + block, None] == labels_db[order]
        hits = np.cumsum(relevant, axis=1)
        ranks = np.arange(1, db.shape[0] + 1)
        total = relevant.sum(axis=1)
        ap = (hits / ranks * relevant).sum(axis=1) / np.maximum(total, 1)
        aps.extend(ap[total > 0])
    return float(np.mean(aps))


def hashlearn_map(q, db, labels_q, labels_db):
    from hashlearn.metrics import mean_average_precision

    return float(mean_average_precision(q, db, labels_q, labels_db))


def _child(name, sizes, queue):
    q, db, lq, ldb = make_data(*sizes)
    fn = {"hashlearn": hashlearn_map, "reference": reference_map}[name]
    if name == "hashlearn":
        fn(q[:2], db[:10], lq[:2], ldb[:10])  # JIT warm-up outside the measurement
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    value = fn(q, db, lq, ldb)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((value, seconds, (peak - base) / 1024))


def measure(name, sizes):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, sizes, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes = (200, 10_000) if args.quick else (1_000, 60_000)
    rows = []
    for name in ("hashlearn", "reference"):
        value, seconds, extra_mb = measure(name, sizes)
        rows.append({"impl": name, "map": value, "seconds": seconds, "peak_extra_mb": extra_mb})
    if abs(rows[0]["map"] - rows[1]["map"]) > 1e-9:
        raise SystemExit(f"mAP differs: {rows[0]['map']} vs {rows[1]['map']}")
    for row in rows:
        row["speedup"] = rows[1]["seconds"] / row["seconds"]
    print(f"mAP@all, {sizes[0]:,} queries x {sizes[1]:,} database, 64 bits, 10 classes")
    print(
        format_table(
            rows,
            [
                ("impl", "implementation", "s"),
                ("map", "mAP", ".6f"),
                ("seconds", "seconds", ".3f"),
                ("peak_extra_mb", "peak extra MB", ".1f"),
                ("speedup", "speed vs reference", ".1f"),
            ],
        )
    )
    path = save(
        "bench_metrics", {"n_queries": sizes[0], "n_db": sizes[1], "rows": rows}, args.output
    )
    print(f"(written to {path})")


if __name__ == "__main__":
    main()
