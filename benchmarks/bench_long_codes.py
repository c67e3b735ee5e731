"""Long codes (256–1,024 bits) on 1 M vectors: flat scan, MIH and flat + float rescoring against
FAISS ``IndexBinaryFlat`` (+ the same rescoring) and usearch's binary index, in one run.

    python benchmarks/bench_long_codes.py            # 1 M vectors, 1,000 queries (long)
    python benchmarks/bench_long_codes.py --quick    # smoke run: 20,000 vectors, 50 queries

Data: a 1,000-centre Gaussian mixture of 256-d float32 vectors (unit norm, the embedding case),
queries from the same distribution (not from the database); codes are the signs of seeded
random projections (hashlearn's ``LSH``) at 256, 512 and 1,024 bits. Rescoring takes the
``oversample × k`` nearest codes and re-ranks them by the float inner product with the stored
vectors (one NumPy function, the same for every first stage). recall@10 is measured against the
exact float top-10 by inner product. Results of the flat scan, MIH and FAISS flat are checked to
have identical distances (ids may differ between libraries inside ties).

Reference in the same run: FAISS ``IndexBinaryFlat`` (and FAISS + the same rescoring); usearch
exact binary search and its HNSW binary index when ``usearch`` is installed (``.[usearch]``).
Target (issue 21): flat, MIH and rescoring ≥ 1× FAISS at every length.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import best_time, parser, save  # noqa: E402
from hashlearn.index import HammingIndex, MIHIndex  # noqa: E402
from hashlearn.quantize import LSH  # noqa: E402

DIM, CENTRES, K, OVERSAMPLE = 256, 1000, 10, 10


def vectors(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """``n`` unit-norm float32 rows of the mixture around ``centres``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 200_000):
        e = min(n, s + 200_000)
        x = centres[rng.integers(0, len(centres), e - s)]
        x = x + rng.standard_normal((e - s, DIM), dtype=np.float32)
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_top(database: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact float top-k ids by inner product, blockwise over the database."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for s in range(0, len(database), 200_000):
        scores = queries @ database[s : s + 200_000].T
        part = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_s = np.hstack([best_s, np.take_along_axis(scores, part, 1)])
        best_i = np.hstack([best_i, part + s])
        order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    return best_i


def rescore(database: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int):
    """Top-k of each query's candidate ids by float inner product (the shared second stage)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 256):
        cand = candidates[s : s + 256]
        scores = np.einsum("qcd,qd->qc", database[cand], queries[s : s + 256])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        out[s : s + 256] = np.take_along_axis(cand, top, 1)
    return out


def rescored(index, qcodes, database, queries) -> np.ndarray:
    """First stage ``index.search`` for ``OVERSAMPLE × K`` candidates, then :func:`rescore`."""
    return rescore(database, queries, index.search(qcodes, K * OVERSAMPLE)[1], K)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth)]))


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every index")
    p.add_argument("--no-hnsw", action="store_true", help="skip usearch's HNSW (slow to build)")
    p.add_argument("--bits", default=None, help="comma-separated code lengths (default "
                   "256,512,1024; --quick: 256,512)")  # fmt: skip
    p.add_argument("--usearch-queries", type=int, default=100,
                   help="queries (the first ones) timed for usearch's exact search, once: it "
                   "runs about 50x slower than FAISS (default 100)")  # fmt: skip
    args = p.parse_args()
    n, nq = (20_000, 50) if args.quick else (1_000_000, 1_000)
    lengths = (256, 512) if args.quick else (256, 512, 1024)
    if args.bits:
        lengths = tuple(int(b) for b in args.bits.split(","))
    repeats = 3
    import faiss
    import numba

    faiss.omp_set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    try:
        from usearch.index import Index, MetricKind, ScalarKind
        from usearch.index import search as usearch_exact
    except ImportError:
        Index = None
        print("usearch not installed: its rows are skipped (pip install usearch)")
    centres = np.random.default_rng(0).standard_normal((CENTRES, DIM)).astype(np.float32)
    database, queries = vectors(n, 1, centres), vectors(nq, 2, centres)
    truth = exact_top(database, queries, K)
    print(f"{n} vectors, {nq} queries, k = {K}, rescoring {OVERSAMPLE} x k, {args.threads} thr")
    print(f"{'bits':>5} {'method':24} {'q/s':>9} {'x FAISS':>8} {'build s':>8} "
          f"{'bytes/vec':>9} {'recall@10':>9}")  # fmt: skip
    rows = []

    def emit(bits, method, seconds, reference, build, nbytes, rec, n_queries=nq):
        """One row; ``seconds`` for ``n_queries`` queries, ``reference`` for all ``nq``."""
        qps = n_queries / seconds
        ratio = qps / (nq / reference) if reference else float("nan")
        row = {"n_bits": bits, "method": method, "qps": qps, "vs_faiss": ratio}
        rows.append(row | {"build_seconds": build, "bytes_per_vector": nbytes, "recall10": rec})
        print(f"{bits:>5} {method:24} {qps:9.0f} {ratio:8.2f} {build:8.2f} {nbytes:9.0f} "
              f"{rec:9.3f}", flush=True)  # fmt: skip

    for bits in lengths:
        lsh = LSH(n_bits=bits, center=False, random_state=0).fit(database[:10_000])
        codes, qcodes = lsh.encode(database), lsh.encode(queries)
        code_bytes = codes.shape[1]
        start = time.perf_counter()
        fx = faiss.IndexBinaryFlat(bits)
        fx.add(codes)
        f_build = time.perf_counter() - start
        fx.search(qcodes[:1], K)  # warm-up
        f_time, (f_d, f_i) = best_time(fx.search, qcodes, K, repeats=repeats)
        emit(bits, "faiss IndexBinaryFlat", f_time, f_time, f_build, code_bytes, recall(f_i, truth))
        start = time.perf_counter()
        flat = HammingIndex(bits)
        flat.add(codes)
        build = time.perf_counter() - start
        flat.search(qcodes[:1], K)  # warm-up (numba compiles on first use)
        t, (d, i) = best_time(flat.search, qcodes, K, repeats=repeats)
        assert np.array_equal(d, f_d), "flat and FAISS distances differ"
        emit(bits, "hashlearn flat", t, f_time, build, code_bytes, recall(i, truth))
        mih = MIHIndex(bits)
        mih.add(codes)
        start = time.perf_counter()
        mih.search(qcodes[:1], K)  # builds the tables
        build = time.perf_counter() - start
        t, (md, mi) = best_time(mih.search, qcodes, K, repeats=repeats)
        assert np.array_equal(md, d) and np.array_equal(mi, i), "MIH differs from the flat scan"
        per = code_bytes + mih.tables_nbytes / n
        emit(bits, f"hashlearn MIH (m={mih.n_tables_})", t, f_time, build, per, recall(mi, truth))
        del mih
        fr_time, fr = best_time(rescored, fx, qcodes, database, queries, repeats=repeats)
        emit(bits, "faiss flat + rescore", fr_time, fr_time, f_build, code_bytes + 4 * DIM,
             recall(fr, truth))  # fmt: skip
        t, r = best_time(rescored, flat, qcodes, database, queries, repeats=repeats)
        emit(bits, "hashlearn flat + rescore", t, fr_time, 0.0, code_bytes + 4 * DIM,
             recall(r, truth))  # fmt: skip
        del fx
        if Index is not None:
            exact = partial(usearch_exact, metric=MetricKind.Hamming, exact=True,
                            threads=args.threads)  # fmt: skip
            uq = min(args.usearch_queries, nq)
            t, matches = best_time(exact, codes, qcodes[:uq], K, repeats=1)
            emit(bits, f"usearch exact ({uq} q)", t, f_time, 0.0, code_bytes,
                 recall(matches.keys, truth[:uq]), n_queries=uq)  # fmt: skip
        if Index is not None and not args.no_hnsw:
            start = time.perf_counter()
            ux = Index(ndim=bits, metric=MetricKind.Hamming, dtype=ScalarKind.B1)
            ux.add(np.arange(n), codes, threads=args.threads)
            build = time.perf_counter() - start
            ux.search(qcodes[:1], K)  # warm-up
            search = partial(ux.search, threads=args.threads)
            t, matches = best_time(search, qcodes, K, repeats=repeats)
            kth = d[:, -1:]  # a hit is right when within the exact k-th Hamming distance
            hits = hamming_recall(codes, qcodes, matches.keys, kth)
            emit(bits, f"usearch HNSW (hit {hits:.3f})", t, f_time, build,
                 ux.memory_usage / n, recall(matches.keys, truth))  # fmt: skip
            del ux
    payload = {"quick": args.quick, "n": n, "n_queries": nq, "threads": args.threads}
    path = save("bench_long_codes", payload | {"rows": rows}, args.output)
    print(f"\nwrote {path}")
    return 0


def hamming_recall(codes, qcodes, found, kth) -> float:
    """Share of returned ids within the exact k-th Hamming distance of their query."""
    from hashlearn import hamming_distances

    ok = [hamming_distances(q[None], codes[f.astype(np.int64)])[0] <= t[0]
          for q, f, t in zip(qcodes, found, kth)]  # fmt: skip
    return float(np.mean(ok))


if __name__ == "__main__":
    sys.exit(main())
