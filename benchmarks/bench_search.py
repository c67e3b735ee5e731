"""Exact Hamming k-NN: hashlearn.HammingIndex vs faiss.IndexBinaryFlat, same data, same run.

1,000,000 random codes, 1,000 queries, k = 100, at 64 / 128 / 256 bits; both use every core.
Checks that the distance lists are identical before reporting speed.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import best_time, parser, save  # noqa: E402
from hashlearn.index import HammingIndex  # noqa: E402
from hashlearn.report import format_table  # noqa: E402


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    import faiss

    threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    n_db, n_q, k = (100_000, 200, 100) if args.quick else (1_000_000, 1_000, 100)
    rng = np.random.default_rng(0)
    rows = []
    for n_bits in (64, 128, 256):
        database = rng.integers(0, 256, size=(n_db, n_bits // 8), dtype=np.uint8)
        queries = rng.integers(0, 256, size=(n_q, n_bits // 8), dtype=np.uint8)
        ours = HammingIndex(n_bits)
        ours.add(database)
        ours.search(queries[:2], k)  # JIT warm-up
        reference = faiss.IndexBinaryFlat(n_bits)
        reference.add(database)
        t_ours, (d_ours, i_ours) = best_time(ours.search, queries, k)
        t_faiss, (d_faiss, i_faiss) = best_time(reference.search, queries, k)
        identical = bool((d_ours == d_faiss).all())
        if not identical:
            raise SystemExit(f"{n_bits} bits: distance lists differ from FAISS")
        rows.append(
            {
                "bits": n_bits,
                "n_db": n_db,
                "n_queries": n_q,
                "k": k,
                "hashlearn_qps": n_q / t_ours,
                "faiss_qps": n_q / t_faiss,
                "ratio": t_faiss / t_ours,
                "identical_distances": identical,
                "identical_ids": bool((i_ours == i_faiss).all()),
            }
        )
    print(f"Exact Hamming search, {n_db:,} codes, {n_q:,} queries, k={k}, {threads} threads")
    print(
        format_table(
            rows,
            [
                ("bits", "bits", "d"),
                ("hashlearn_qps", "hashlearn q/s", ",.0f"),
                ("faiss_qps", "FAISS q/s", ",.0f"),
                ("ratio", "ratio", ".2f"),
                ("identical_distances", "same distances", "s"),
                ("identical_ids", "same ids", "s"),
            ],
        )
    )
    path = save("bench_search", {"threads": threads, "rows": rows}, args.output)
    print(f"(ratio = hashlearn q/s / FAISS q/s; written to {path})")


if __name__ == "__main__":
    main()
