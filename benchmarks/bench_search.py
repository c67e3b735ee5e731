"""Search at scale: flat scan vs multi-index hashing vs FAISS vs Milvus Lite, same data, same run.

Codes: 64-bit LSH codes (signs of random projections) of a 1,000-centre Gaussian mixture in
128-d, so near neighbours exist as in real use, at 1 M and 10 M; and uniform random codes (MIH's
worst case). Queries come from the same distribution (not from the database). Reports q/s at
k = 1, 10, 100 and radius 2, recall@k of the approximate indexes, build time and memory per
million codes, MIH/flat scaling over n, and a 10 M on-disk store searched through memory maps
under an address-space limit (RLIMIT_AS) smaller than the store, in a subprocess.

recall@k counts a returned item as correct when its distance is at most the exact k-th
distance (any of several items tied at that distance is a correct neighbour).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RESULTS, best_time, parser, save  # noqa: E402
from hashlearn.index import HammingIndex, MIHIndex  # noqa: E402

N_BITS, DIM, CENTRES = 64, 128, 1000
KS = (1, 10, 100)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def mixture_codes(seed: int):
    """A sampler of LSH codes of one fixed Gaussian mixture (centres and projections fixed)."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    planes = rng.standard_normal((DIM, N_BITS)).astype(np.float32)

    def sample(n: int, draw_seed: int) -> np.ndarray:
        draw = np.random.default_rng(draw_seed)
        out = np.empty((n, N_BITS // 8), dtype=np.uint8)
        for s in range(0, n, 500_000):
            e = min(n, s + 500_000)
            x = centres[draw.integers(0, CENTRES, e - s)]
            x = x + draw.standard_normal((e - s, DIM), dtype=np.float32)
            out[s:e] = np.packbits(x @ planes > 0, axis=1)
        return out

    return sample


def random_codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, N_BITS // 8), dtype=np.uint8)


def peak_rss() -> int:
    """This process image's peak RSS (VmHWM; ru_maxrss would count the parent before exec)."""
    with open("/proc/self/status") as handle:
        return next(int(ln.split()[1]) * 1024 for ln in handle if ln.startswith("VmHWM"))


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(make):
    before, start = rss(), time.perf_counter()
    index = make()
    return index, time.perf_counter() - start, max(rss() - before, 0)


def recall(found_d: np.ndarray, exact_d: np.ndarray) -> float:
    kth = exact_d[:, -1:]
    return float(((found_d <= kth) & (found_d >= 0)).sum() / exact_d.size)


class Faiss:
    """Raw FAISS binary indexes, searched as FAISS users would (range radius is exclusive)."""

    def __init__(self, kind: str, database: np.ndarray):
        import faiss

        self.index = faiss.IndexBinaryFlat(N_BITS) if kind == "flat" else None
        if kind == "hnsw":
            self.index = faiss.IndexBinaryHNSW(N_BITS, 32)
            self.index.hnsw.efSearch = 128
        if kind == "ivf":  # the algorithm behind Milvus's BIN_IVF_FLAT (nlist 1024, nprobe 16)
            self.quantizer = faiss.IndexBinaryFlat(N_BITS)
            self.index = faiss.IndexBinaryIVF(self.quantizer, N_BITS, 1024)
            self.index.train(database[:: max(1, len(database) // 100_000)])
            self.index.nprobe = 16
        self.index.add(database)

    def search(self, queries, k):
        return self.index.search(queries, k)

    def range_search(self, queries, radius):
        return self.index.range_search(queries, radius + 1)


def bench_size(name, database, queries, ks, radius, with_approx, milvus_dir, rows, builds):
    n, nq = len(database), len(queries)
    repeats = 1 if n >= 5_000_000 else 3
    log(f"[{name} n={n:,}] building")

    def make_mih():
        mih = MIHIndex(N_BITS)
        mih.add(database)
        mih.search(queries[:1], 1)  # tables are built on first search
        return mih

    makers = {
        "flat": lambda: _flat(database),
        "MIH": make_mih,
        "faiss-flat": lambda: Faiss("flat", database),
    }
    if with_approx:
        makers["faiss-hnsw"] = lambda: Faiss("hnsw", database)
        makers["faiss-ivf1024"] = lambda: Faiss("ivf", database)
    indexes = {}
    for label, make in makers.items():
        indexes[label], seconds, mem = build(make)
        builds.append(
            {
                "codes": name,
                "n": n,
                "index": label,
                "build_s_per_M": seconds / n * 1e6,
                "memory_MB_per_M": mem / n,
            }
        )
        log(f"  built {label} in {seconds:.1f}s")
    if milvus_dir is not None:
        indexes.update(_milvus(database, queries, milvus_dir, builds, name))
    for k in ks:
        t_flat, (exact_d, exact_i) = best_time(indexes["flat"].search, queries, k, repeats=repeats)
        for label, index in indexes.items():
            q = queries[: query_budget(label, n, nq)]
            if label == "flat":
                t, (d, i) = t_flat, (exact_d, exact_i)
            else:
                t, (d, i) = best_time(index.search, q, k, repeats=repeats)
            row = {
                "codes": name,
                "n": n,
                "index": label,
                "query": f"k={k}",
                "qps": len(q) / t,
                "vs_flat": (len(q) / t) / (nq / t_flat),
            }
            if label in ("MIH", "faiss-flat"):
                row["identical"] = bool(
                    (d == exact_d[: len(q)]).all() and (label != "MIH" or (i == exact_i).all())
                )
            else:
                row["recall"] = recall(np.asarray(d), exact_d[: len(q)])
            rows.append(row)
            log(f"  k={k} {label}: {row['qps']:,.0f} q/s ({row['vs_flat']:.1f}x flat)")
    t_flat, exact = best_time(indexes["flat"].range_search, queries, radius, repeats=repeats)
    for label, index in indexes.items():
        if label in ("faiss-hnsw", "faiss-ivf1024"):
            continue
        q = queries[: query_budget(label, n, nq)]
        t, got = (t_flat, exact) if label == "flat" else best_time(index.range_search, q, radius)
        hits = int(got[0][-1])
        same = hits == int(exact[0][len(q)]) and (
            label != "MIH" or all((a == b).all() for a, b in zip(got, exact))
        )
        rows.append(
            {
                "codes": name,
                "n": n,
                "index": label,
                "query": f"r<={radius}",
                "qps": len(q) / t,
                "vs_flat": (len(q) / t) / (nq / t_flat),
                "identical": bool(same),
            }
        )
        log(f"  radius {radius} {label}: {len(q) / t:,.0f} q/s")
    for index in indexes.values():
        if hasattr(index, "close"):
            index.close()


def query_budget(label: str, n: int, nq: int) -> int:
    """Fewer queries for the slow exact baselines at 10 M, so the run stays within minutes."""
    if label.startswith("Milvus"):
        return min(nq, 200)
    if label == "faiss-flat" and n >= 5_000_000:
        return min(nq, 100)
    return nq


def _flat(database):
    flat = HammingIndex(N_BITS)
    flat.add(database)
    return flat


def _milvus(database, queries, directory, builds, name):
    """Milvus Lite, which builds only BIN_FLAT (BIN_IVF_FLAT needs a server; see faiss-ivf1024)."""
    from hashlearn.index import MilvusBinaryIndex

    start = time.perf_counter()
    index = MilvusBinaryIndex(N_BITS, uri=str(Path(directory) / "milvus.db"), overwrite=True)
    index.add(database)
    index.search(queries[:1], 1)
    seconds = time.perf_counter() - start
    per_m = seconds / len(database) * 1e6
    builds.append(
        {"codes": name, "n": len(database), "index": "Milvus Lite BIN_FLAT", "build_s_per_M": per_m}
    )
    log(f"  built Milvus Lite BIN_FLAT in {seconds:.1f}s")
    return {"Milvus Lite BIN_FLAT": index}


def scaling(database, sizes, queries, rows):
    """k=10 q/s of flat and MIH over n (for the cost model in benchmarks/README.md)."""
    for n in sizes:
        flat, mih = _flat(database[:n]), MIHIndex(N_BITS)
        mih.add(database[:n])
        mih.search(queries[:1], 10)
        t_flat, (d0, _) = best_time(flat.search, queries, 10, repeats=1 if n > 3e6 else 3)
        t_mih, _ = best_time(mih.search, queries, 10, repeats=1 if n > 3e6 else 3)
        rows.append(
            {
                "n": n,
                "flat_qps": len(queries) / t_flat,
                "mih_qps": len(queries) / t_mih,
                "m": mih.n_tables_,
                "median_kth_distance": float(np.median(d0[:, -1])),
                "scanned_queries": mih.n_scanned_,
            }
        )
        log(f"  scaling n={n:,}: flat {rows[-1]['flat_qps']:,.0f} MIH {rows[-1]['mih_qps']:,.0f}")


def mmap_under_limit(database, queries, workdir):
    """Save a store, then search it with mmap in a child whose RLIMIT_AS is below the store."""
    store = Path(workdir) / "store.hlx"
    _flat(database).save(store)
    expected = _flat(database).search(queries, 10)
    np.save(Path(workdir) / "q.npy", queries)
    np.savez(Path(workdir) / "expected.npz", d=expected[0], i=expected[1])
    cmd = [sys.executable, __file__, "--mmap-child", str(workdir)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout)


def mmap_child(workdir: str) -> None:
    store = Path(workdir) / "store.hlx"
    queries = np.load(Path(workdir) / "q.npy")
    expected = np.load(Path(workdir) / "expected.npz")
    warm = HammingIndex(N_BITS)
    warm.add(queries)
    warm.save(Path(workdir) / "warm.hlx")  # compile the mmap path, start threads, before the limit
    HammingIndex.load(Path(workdir) / "warm.hlx", mmap=True).search(queries, 10)
    with open("/proc/self/status") as handle:
        vm = {ln.split(":")[0]: int(ln.split()[1]) * 1024 for ln in handle if ln.startswith("Vm")}
    size = store.stat().st_size
    limit = vm["VmSize"] + size // 2
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.perf_counter()
    index = HammingIndex.load(store, mmap=True)
    d, i = index.search(queries, 10)
    seconds = time.perf_counter() - start
    try:
        HammingIndex.load(store)
        in_memory = "loaded"
    except Exception as exc:  # the point: reading the whole store does not fit under the limit
        in_memory = f"refused ({type(exc).__name__})"
    print(
        json.dumps(
            {
                "store_MB": size / 2**20,
                "vm_size_before_limit_MB": vm["VmSize"] / 2**20,
                "rlimit_as_MB": limit / 2**20,
                "headroom_MB": (limit - vm["VmSize"]) / 2**20,
                "verify_and_search_s": seconds,
                "queries": len(queries),
                "peak_rss_MB": peak_rss() / 2**20,
                "identical": bool((d == expected["d"]).all() and (i == expected["i"]).all()),
                "full_in_memory_load": in_memory,
            }
        )
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--mmap-child", default=None, help=argparse_hidden())
    p.add_argument("--no-milvus", action="store_true", help="skip Milvus Lite")
    args = p.parse_args()
    if args.mmap_child:
        return mmap_child(args.mmap_child)
    small, large = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    nq = 200 if args.quick else 1000
    sample = mixture_codes(0)
    queries = sample(nq, 99)
    rows, builds, scale = [], [], []
    load = os.getloadavg()
    started = time.perf_counter()
    log(f"[data] {large:,} clustered codes")
    clustered = sample(large, 1)  # smaller sizes are prefixes: same distribution
    with tempfile.TemporaryDirectory() as workdir:
        for n in (small, large):
            milvus = None if (n != small or args.no_milvus) else workdir
            approx = n == small
            bench_size("clustered", clustered[:n], queries, KS, 2, approx, milvus, rows, builds)
        log("[store] mmap search under RLIMIT_AS")
        store = mmap_under_limit(clustered, queries[:100], workdir)
        uniform, uniform_q = random_codes(large, 2), random_codes(nq, 3)
        for n in (small, large):
            bench_size("uniform", uniform[:n], uniform_q, KS, 2, False, None, rows, builds)
        del uniform
        log("[scaling]")
        sizes = [small // 10, small // 3, small, large // 3, large]
        scaling(clustered, sizes, queries, scale)
    payload = {
        "threads": os.cpu_count(),
        "load_avg_at_start": load,
        "load_avg_at_end": os.getloadavg(),
        "wall_s": time.perf_counter() - started,
        "queries": nq,
        "search": rows,
        "build": builds,
        "scaling": scale,
        "mmap_store": store,
    }
    path = save(
        "bench_search",
        payload,
        args.output
        or Path(__file__).parent
        / "results"
        / ("bench_search_quick.json" if args.quick else "bench_search.json"),
    )
    write_markdown(payload, path.with_suffix(".md"))
    print(f"written to {path} and {path.with_suffix('.md')}")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def write_markdown(payload: dict, path: Path) -> None:
    lines = [
        f"# bench_search ({payload['threads']} threads, load average at start "
        f"{payload['load_avg_at_start'][0]:.1f}, at end {payload['load_avg_at_end'][0]:.1f}, "
        f"{payload['wall_s'] / 60:.0f} min)",
        "",
        "| codes | n | index | query | q/s | × flat | identical / recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in payload["search"]:
        check = r.get("identical", r.get("recall"))
        check = f"{check:.3f}" if isinstance(check, float) else str(check)
        lines.append(
            f"| {r['codes']} | {r['n']:,} | {r['index']} | {r['query']} | "
            f"{r['qps']:,.0f} | {r['vs_flat']:.2f} | {check} |"
        )
    lines += [
        "",
        "| codes | n | index | build s / M codes | memory MB / M codes |",
        "|---|---|---|---|---|",
    ]
    for b in payload["build"]:
        mem = b.get("memory_MB_per_M")
        lines.append(
            f"| {b['codes']} | {b['n']:,} | {b['index']} | {b['build_s_per_M']:.2f} | "
            f"{'' if mem is None else f'{mem:.1f}'} |"
        )
    lines += [
        "",
        "| n | flat q/s (k=10) | MIH q/s | m | median 10th distance | scanned |",
        "|---|---|---|---|---|---|",
    ]
    for s in payload["scaling"]:
        lines.append(
            f"| {s['n']:,} | {s['flat_qps']:,.0f} | {s['mih_qps']:,.0f} | {s['m']} | "
            f"{s['median_kth_distance']:.0f} | {s['scanned_queries']} |"
        )
    lines += ["", "mmap store: `" + json.dumps(payload["mmap_store"]) + "`", ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
